# SPDX-License-Identifier: MIT
#
# Every example is run by the tests and its output checked. Included by the
# top-level CMakeLists.txt when the examples and the tests are both built.

add_test(NAME example_share_region COMMAND share_region)
set_tests_properties(example_share_region PROPERTIES
  TIMEOUT 30
  PASS_REGULAR_EXPRESSION
  "region says \"hello from the parent\".*writable map of the READ-only capability: EACCES.*raw mmap\\(PROT_WRITE\\) of its descriptor: refused by the kernel.*the child wrote \"hello back from the child\""
  FAIL_REGULAR_EXPRESSION "ALLOWED|share_region:")

add_test(NAME example_token_pass COMMAND token_pass)
set_tests_properties(example_token_pass PROPERTIES
  TIMEOUT 30
  PASS_REGULAR_EXPRESSION
  "rights READ; region says \"passed by token\".*again: EKEYREVOKED.*parent: done"
  FAIL_REGULAR_EXPRESSION "token_pass:")

add_test(NAME example_robust_mutex COMMAND robust_mutex)
set_tests_properties(example_robust_mutex PROPERTIES
  TIMEOUT 60
  PASS_REGULAR_EXPRESSION
  "semaphore round trips.*killed the child while it held the mutex \\(a=1, b=0\\).*returned EOWNERDEAD.*repaired \\(a=1, b=1\\).*next lock returned OK"
  FAIL_REGULAR_EXPRESSION "robust_mutex:")
