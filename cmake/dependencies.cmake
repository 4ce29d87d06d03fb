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

add_library(ebb_deps INTERFACE)
target_link_libraries(ebb_deps INTERFACE fmt::fmt nlohmann_json::nlohmann_json CLI11::CLI11
                                         Threads::Threads ICU::uc ZLIB::ZLIB PNG::PNG)
if(URING_FOUND)
  target_link_libraries(ebb_deps INTERFACE PkgConfig::URING)
  target_compile_definitions(ebb_deps INTERFACE EBB_HAVE_URING=1)
endif()
