# Every dependency is a Debian package (scripts/setup installs them); docs/dependencies.md says
# why each is here.
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
find_package(ICU REQUIRED COMPONENTS uc)
find_package(ZLIB REQUIRED)
find_package(PNG REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(URING IMPORTED_TARGET liburing)
# The CPU backend's matrix products. Debian ships OpenBLAS in pthread, OpenMP and serial builds
# behind one alternatives link; the pthread build is named explicitly so its thread count can be
# set to the backend's own and no OpenMP runtime spins beside the backend's thread pool.
find_package(OpenBLAS CONFIG REQUIRED NO_DEFAULT_PATH
             PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-pthread/cmake)
add_library(ebb_blas INTERFACE)
target_include_directories(ebb_blas SYSTEM INTERFACE ${OpenBLAS_INCLUDE_DIRS})
target_link_libraries(ebb_blas INTERFACE ${OpenBLAS_LIBRARIES})

add_library(ebb_deps INTERFACE)
target_link_libraries(ebb_deps INTERFACE fmt::fmt nlohmann_json::nlohmann_json CLI11::CLI11
                                         Threads::Threads ICU::uc ZLIB::ZLIB PNG::PNG ebb_blas)
if(URING_FOUND)
  target_link_libraries(ebb_deps INTERFACE PkgConfig::URING)
  target_compile_definitions(ebb_deps INTERFACE EBB_HAVE_URING=1)
endif()
