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

# cuDNN's fused attention is built through NVIDIA's cuDNN frontend (header-only, MIT), which
# scripts/setup fetches; without it (or without cudnn.h) Ebb builds without that path.
set(EBB_CUDNN_FRONTEND_DIR "${PROJECT_SOURCE_DIR}/.deps/cudnn-frontend-1.32.0/include"
    CACHE PATH "The cuDNN frontend's include directory (holds cudnn_frontend.h)")
set(EBB_HAVE_CUDNN_FRONTEND OFF)
if(EBB_HAVE_CUDA)
  find_path(EBB_CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  if(EXISTS "${EBB_CUDNN_FRONTEND_DIR}/cudnn_frontend.h" AND EBB_CUDNN_INCLUDE_DIR)
    set(EBB_HAVE_CUDNN_FRONTEND ON)
    message(STATUS "Ebb cuDNN attention: ON (frontend ${EBB_CUDNN_FRONTEND_DIR})")
  else()
    message(STATUS "Ebb cuDNN attention: OFF (no cudnn_frontend.h in ${EBB_CUDNN_FRONTEND_DIR} "
                   "or no cudnn.h; scripts/setup fetches the frontend)")
  endif()
endif()

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
  if(EBB_HAVE_CUDNN_FRONTEND)
    # SYSTEM so -Werror does not apply to NVIDIA's headers; dynamic loading so cuDNN stays a
    # run-time dependency; the frontend's JSON serialization is not used.
    set_source_files_properties(${PROJECT_SOURCE_DIR}/src/backend/cuda/cudnn_attention.cpp
      PROPERTIES COMPILE_OPTIONS "-isystem;${EBB_CUDNN_FRONTEND_DIR};-isystem;${EBB_CUDNN_INCLUDE_DIR}"
      COMPILE_DEFINITIONS
        "EBB_HAVE_CUDNN_FRONTEND=1;NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING;CUDNN_FRONTEND_SKIP_JSON_LIB")
  endif()
  target_link_libraries(${target} PUBLIC CUDA::cudart_static CUDA::cublasLt ${CMAKE_DL_LIBS})
  target_compile_definitions(${target} PUBLIC EBB_HAVE_CUDA=1)
endfunction()
