# dsv3 serve (issue 16): real clients against the server on the tiny model `dsv3 init` makes
# (tests/model.cmake's fixture model_tiny_f32): the official openai npm client, a bad-request
# suite, disconnect and SIGTERM, batched = alone, and the chat page in headless Chromium. The npm
# packages (openai, puppeteer-core) are in tests/js (scripts/fetch-assets.sh); Chromium is Debian's
# (scripts/setup-deps.sh --test).
set(SERVE_MODEL ${CMAKE_CURRENT_BINARY_DIR}/model_cli/tiny_f32)
foreach(check openai_check bad_requests disconnect_check batched_check web_check)
  add_test(NAME serve_${check}
           COMMAND node ${CMAKE_CURRENT_SOURCE_DIR}/serve/${check}.mjs $<TARGET_FILE:dsv3> ${SERVE_MODEL})
  set_tests_properties(serve_${check} PROPERTIES FIXTURES_REQUIRED model_tiny_f32 LABELS "serve"
                       TIMEOUT 120)
endforeach()
# Skipped (exit 77, with the reason printed) only when Chromium cannot start in the sandbox.
set_tests_properties(serve_web_check PROPERTIES SKIP_RETURN_CODE 77)

# The command line: --help explains every flag; bad values are named before the model loads.
set(SERVE_CLI ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/cli_check.py)
add_test(NAME serve_help COMMAND ${SERVE_CLI} --ok --match "--slots N" --match "--api-key KEY"
                                 --match "--drain-timeout" -- $<TARGET_FILE:dsv3> serve --help)
add_test(NAME serve_bad_port COMMAND ${SERVE_CLI} --fail --match "--port must be in 0 \\.\\. 65535, not 70000"
                                     -- $<TARGET_FILE:dsv3> serve -m ${SERVE_MODEL} --port 70000)
add_test(NAME serve_bad_host
         COMMAND ${SERVE_CLI} --fail --match "cannot listen on 256\\.1\\.1\\.1:0" --match "--host"
                 -- $<TARGET_FILE:dsv3> serve -m ${SERVE_MODEL} --host 256.1.1.1 --port 0)
set_tests_properties(serve_help serve_bad_port serve_bad_host PROPERTIES LABELS "serve;cli" TIMEOUT 60)
set_tests_properties(serve_bad_host PROPERTIES FIXTURES_REQUIRED model_tiny_f32)
