# Distributed training (issue 18). The pipeline schedules and ZeRO-1 shards are unit tests
# (tests/unit/dist, tests/unit/train/test_zero1.cc, always built); the MPI runs need a
# DSV3_MPI=ON build and OpenMPI's mpirun, oversubscribed on CI's cores.
#
# dist_dp_* (tests/dist/dp_check.py): data parallel with ZeRO-1 over 2 and 4 ranks equals one
# process bit for bit; checkpoints resume on another number of ranks; bad rank counts are errors.
# dist_dp_ep*: `dsv3 train --dp 4 --ep 2|4` against one process (bounds and why in dp_check.py),
# and resume across E.
if(DSV3_MPI)
  find_package(MPI REQUIRED COMPONENTS CXX)
  foreach(case ranks2 ranks4 resume refuse ep2 ep4 ep_fp8 ep_node_limit ep_resume)
    add_test(NAME dist_dp_${case}
             COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/dist/dp_check.py ${case}
                     $<TARGET_FILE:dsv3> ${PROJECT_SOURCE_DIR}
                     ${CMAKE_CURRENT_BINARY_DIR}/dist/dp_${case} ${MPIEXEC_EXECUTABLE})
    set_tests_properties(dist_dp_${case} PROPERTIES LABELS "dist;mpi" TIMEOUT 300)
  endforeach()

  # dist_ep_* (tests/dist/ep_check.cc): the all-to-all MoE dispatcher over 2 and 4 ranks against
  # the local one: logits and held experts' gradients bit for bit, the rest within 1e-13.
  add_executable(dist_ep_check dist/ep_check.cc)
  target_link_libraries(dist_ep_check PRIVATE dsv3_dist)
  # dist_ep_fp8_*: V3's payloads (FP8 dispatch, BF16 combine) within bounds from E4M3's step, and
  # the bytes per row they should take.
  foreach(n 2 4)
    foreach(payload fp32 fp8)
      set(name dist_ep_${n})
      if(payload STREQUAL "fp8")
        set(name dist_ep_fp8_${n})
      endif()
      add_test(NAME ${name} COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe -np ${n}
                                    $<TARGET_FILE:dist_ep_check> ${payload})
      set_tests_properties(${name} PROPERTIES LABELS "dist;mpi" TIMEOUT 120 ENVIRONMENT
        "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_btl=self,vader,tcp")
    endforeach()
  endforeach()
endif()
