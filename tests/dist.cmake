# Distributed training (issue 18). The pipeline schedules and ZeRO-1 shards are unit tests
# (tests/unit/dist, tests/unit/train/test_zero1.cc, always built); the MPI runs need a
# DSV3_MPI=ON build and OpenMPI's mpirun, oversubscribed on CI's cores.
#
# dist_dp_* (tests/dist/dp_check.py): data parallel with ZeRO-1 over 2 and 4 ranks equals one
# process bit for bit; checkpoints resume on another number of ranks; bad rank counts are errors.
if(DSV3_MPI)
  find_package(MPI REQUIRED COMPONENTS CXX)
  foreach(case ranks2 ranks4 resume refuse)
    add_test(NAME dist_dp_${case}
             COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/dist/dp_check.py ${case}
                     $<TARGET_FILE:dsv3> ${PROJECT_SOURCE_DIR}
                     ${CMAKE_CURRENT_BINARY_DIR}/dist/dp_${case} ${MPIEXEC_EXECUTABLE})
    set_tests_properties(dist_dp_${case} PROPERTIES LABELS "dist;mpi" TIMEOUT 300)
  endforeach()
endif()
