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
  # dist_<kind>_<case>: tests/dist/<kind>_check.py CASE DSV3 SOURCE_DIR WORK_DIR MPIEXEC.
  function(dist_check kind)
    foreach(case ${ARGN})
      add_test(NAME dist_${kind}_${case}
               COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/dist/${kind}_check.py ${case}
                       $<TARGET_FILE:dsv3> ${PROJECT_SOURCE_DIR}
                       ${CMAKE_CURRENT_BINARY_DIR}/dist/${kind}_${case} ${MPIEXEC_EXECUTABLE})
      set_tests_properties(dist_${kind}_${case} PROPERTIES LABELS "dist;mpi" TIMEOUT 300)
    endforeach()
  endfunction()
  dist_check(dp ranks2 ranks4 resume refuse ep2 ep4 ep_fp8 ep_node_limit ep_resume)

  # dist_pp_* (tests/dist/pp_check.py): the pipeline runner (1F1B, DualPipe over 2, 4, 8 ranks,
  # DualPipeV over 2, 3, 4, two pipelines of 2 with --dp 2, FP8 with recomputation) equals one
  # process bit for bit at 20 micro-batches; each rank runs its program; checkpoints resume over
  # another rank count; bad layouts are errors. ep2_*: --ep 2 inside the pipelines against the
  # same pipelines without it (bounds and why in pp_check.py); *_cost: --pp-split cost;
  # overlap_*: --overlap-fb (F&B pairs on two threads) bit for bit, with EP too.
  dist_check(pp dualpipe2 dualpipe4 dualpipe8 dualpipev2 dualpipev3 dualpipev4 1f1b4 dp2_dualpipe2
             dp2_dualpipev2 fp8_recompute resume refuse ep2_1f1b2 ep2_dualpipe2 ep2_dualpipev2
             1f1b4_cost dualpipev2_cost overlap_dualpipe4 overlap_dualpipev2 overlap_ep2_dualpipe2)

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
