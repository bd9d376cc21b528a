# Layering (ARCHITECTURE.md): src/<module> includes only the modules it links to, below it.
add_test(NAME architecture_layers
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/arch/check_layers.py ${PROJECT_SOURCE_DIR})
set_tests_properties(architecture_layers PROPERTIES LABELS "architecture")
