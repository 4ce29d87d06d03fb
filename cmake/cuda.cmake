# The CUDA backend is compiled whenever nvcc is available so GPU code never rots unnoticed,
# even on machines (like CI) that cannot run it.
set(EBB_HAVE_CUDA OFF)
if(NOT EBB_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_ARCHITECTURES ${EBB_CUDA_ARCHS})
    # CMake 3.25 does not know nvcc's C++20 flag; CUDA sources are written in C++17.
    set(CMAKE_CUDA_STANDARD 17)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(EBB_HAVE_CUDA ON)
  elseif(EBB_CUDA STREQUAL "ON")
    message(FATAL_ERROR "EBB_CUDA=ON but no CUDA compiler was found (looked in PATH and /usr/local/cuda)")
  endif()
endif()
message(STATUS "Ebb CUDA backend: ${EBB_HAVE_CUDA} (architectures: ${EBB_CUDA_ARCHS})")

function(ebb_add_cuda target)
  if(NOT EBB_HAVE_CUDA)
    return()
  endif()
  file(GLOB_RECURSE cuda_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/backend/cuda/*.cu
       ${PROJECT_SOURCE_DIR}/src/backend/cuda/*.cpp)
  target_sources(${target} PRIVATE ${cuda_sources})
  # The CUDA runtime is linked statically so the binary runs wherever a driver is present;
  # without a driver the backend reports "no CUDA device" instead of failing to start.
  # cuDNN is opened at run time (backend/cuda/cudnn_library.h), never linked.
  target_link_libraries(${target} PUBLIC CUDA::cudart_static CUDA::cublasLt ${CMAKE_DL_LIBS})
  target_compile_definitions(${target} PUBLIC EBB_HAVE_CUDA=1)
endfunction()
