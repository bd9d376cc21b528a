# Chat templates (issue 4): dsv3 renders the fixtures (tests/fixtures/chat_templates: DeepSeek-V3's
# template from the npm assets, R1's, the R1-Distill ones and dsv3-en's, 27 conversations, with and without
# add_generation_prompt) exactly as the JavaScript references (@huggingface/jinja, @lenml/tokenizers)
# and Python Jinja2 set up as Hugging Face transformers do; plus the dsv3 template CLI.
# The npm assets and tests/js/node_modules come from scripts/fetch-assets.sh (scripts/test.sh runs it).
set(TEMPLATE_FIXTURES ${PROJECT_SOURCE_DIR}/tests/fixtures/chat_templates)
set(TEMPLATE_WORK ${CMAKE_CURRENT_BINARY_DIR}/template)
# Also the template that `dsv3 tokenizer train` writes (the committed dsv3-en tokenizers).
set(TEMPLATE_MODELS ${PROJECT_SOURCE_DIR}/assets/tokenizers/dsv3-en-4k)

add_test(NAME template_reference_js
         COMMAND node ${PROJECT_SOURCE_DIR}/tests/js/template_reference.mjs
                 ${PROJECT_SOURCE_DIR}/.cache/assets ${TEMPLATE_FIXTURES} ${TEMPLATE_WORK}/expected_js.json
                 ${TEMPLATE_MODELS})
set_tests_properties(template_reference_js PROPERTIES FIXTURES_SETUP template_js
                     LABELS "template;ref" TIMEOUT 120)
add_test(NAME template_reference_py
         COMMAND ${DSV3_PYTHON} ${PROJECT_SOURCE_DIR}/tests/ref/template_reference.py
                 ${PROJECT_SOURCE_DIR}/.cache/assets ${TEMPLATE_FIXTURES} ${TEMPLATE_WORK}/expected_py.json
                 ${TEMPLATE_MODELS})
set_tests_properties(template_reference_py PROPERTIES FIXTURES_SETUP template_py
                     LABELS "template;ref" TIMEOUT 120)

foreach(ref js py)
  add_test(NAME template_matches_${ref}
           COMMAND test_tokenizer --gtest_filter=ChatTemplateReference.*)
  set_tests_properties(template_matches_${ref} PROPERTIES
                       ENVIRONMENT DSV3_TEMPLATE_EXPECTED=${TEMPLATE_WORK}/expected_${ref}.json
                       FIXTURES_REQUIRED template_${ref} LABELS "template;ref" TIMEOUT 120)
endforeach()

add_test(NAME template_cli
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/template/cli_check.sh $<TARGET_FILE:dsv3>
                 ${PROJECT_SOURCE_DIR} ${TEMPLATE_WORK}/cli)
set_tests_properties(template_cli PROPERTIES LABELS "template;cli" TIMEOUT 300)
