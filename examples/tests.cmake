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

# The seed examples of the ChorusOS, L4Re, POSIX and Vicare documents
# (examples/README.md); each test checks its seed's own lines. A regular
# expression alone would pass a program that printed the right lines and
# then failed or crashed, so the scripts below report a non-zero exit
# status, and sanitizer reports fail a test too. The scripts are written
# to the build tree.

# run_one.sh PROGRAM [ARGS...]
file(WRITE "${CMAKE_BINARY_DIR}/examples/run_one.sh" [=[
"$@"
rc=$?
[ "$rc" -eq 0 ] || echo "EXIT STATUS $rc"
]=])

# run_pair.sh l4re|posix BACKGROUND FOREGROUND: starts the server (or the
# reader) in the background, waits on a FIFO for its first line (no
# sleep), runs the client (or pipes lines into the writer), and always
# stops and reaps the background program. Names carry the script's pid,
# so parallel runs never meet. Checks that /dev/shm is left clean.
file(WRITE "${CMAKE_BINARY_DIR}/examples/run_pair.sh" [=[
set -u
kind=$1 bg=$2 fg=$3 pid=
dir=$(mktemp -d) || exit 1
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
if [ "$kind" = l4re ]; then name=shm-test-$$; else name=posix_lesson_test_$$; fi
mkfifo "$dir/out" || exit 1
"$bg" "$name" > "$dir/out" &
pid=$!
exec 3< "$dir/out"
if ! IFS= read -r line <&3; then
	echo "BACKGROUND FAILED"
	exit 1
fi
echo "$line"
if [ "$kind" = l4re ]; then
	"$fg" "$name"
else
	printf 'first line\nsecond, longer line\n\nlast line\n' | "$fg" "$name"
fi || { echo "FOREGROUND FAILED"; kill "$pid"; }
cat <&3
wait "$pid" || echo "BACKGROUND FAILED"
pid=
if [ -e "/dev/shm/shmcap.$name" ]; then
	echo "LEFTOVER /dev/shm/shmcap.$name"
	rm -f "/dev/shm/shmcap.$name"
fi
]=])

# example_test(NAME PASS FAIL SCRIPT ARGS...): run a script, check output.
function(example_test name pass fail script)
  add_test(NAME ${name}
           COMMAND sh "${CMAKE_BINARY_DIR}/examples/${script}" ${ARGN})
  set_tests_properties(${name} PROPERTIES
    TIMEOUT 30
    PASS_REGULAR_EXPRESSION "${pass}"
    FAIL_REGULAR_EXPRESSION
    "${fail}|EXIT STATUS|FAILED|LEFTOVER|Sanitizer|runtime error")
endfunction()

set(_user "This actor is running as a user actor\n")
set(_super "This actor is running as a supervisor actor\n")
example_test(example_chorus_privilege
  "^${_user}$" "chorus_privilege:"
  run_one.sh $<TARGET_FILE:chorus_privilege>)
example_test(example_chorus_privilege_supervisor
  "^${_user}${_super}$" "chorus_privilege:"
  run_one.sh $<TARGET_FILE:chorus_privilege> --supervisor)

# Parent and child print concurrently: either order.
set(_parent "I succeeded creating actor whose aid is [1-9][0-9]*\n")
set(_child
    "My spawning actor passed me this argument: Welcome newly created actor!\n")
example_test(example_chorus_spawn
  "${_parent}.*${_child}|${_child}.*${_parent}" "chorus_spawn:|should not"
  run_one.sh $<TARGET_FILE:chorus_spawn>)
# The welcome text typed by hand is refused (exit status 1): no spawner.
add_test(NAME example_chorus_spawn_argument
         COMMAND chorus_spawn "Welcome newly created actor!")
set_tests_properties(example_chorus_spawn_argument PROPERTIES
  TIMEOUT 30
  PASS_REGULAR_EXPRESSION
  "^You ran [^\n]*chorus_spawn with an argument, you should not!\n$")

set(_sent "Spawning actor sent: First actor initializing the shared mem\n")
set(_mapped "Spawned actor mapped shared memory at 0x[0-9a-f]+\n")
example_test(example_chorus_rgnmap
  "^First actor: user region of 3 pages at 0x[0-9a-f]+\n${_sent}${_mapped}"
  "chorus_rgnmap:"
  run_one.sh $<TARGET_FILE:chorus_rgnmap>)
string(CONCAT _re
       "^First actor: supervisor region of 3 pages at 0x[0-9a-f]+\n"
       "${_sent}${_mapped}First actor: that is the same address as mine\n$")
example_test(example_chorus_rgnmap_supervisor "${_re}"
  "chorus_rgnmap:"
  run_one.sh $<TARGET_FILE:chorus_rgnmap> --supervisor)

string(CONCAT _re
       "^Server: published \"shm-test-[0-9]+\", waiting for a client\n"
       "Content: Hello from server!\n.*"
       "Server: the client wrote \"Hello from client, too!\"\n$")
example_test(example_l4re "${_re}"
  "l4re_server:|l4re_client:"
  run_pair.sh l4re $<TARGET_FILE:l4re_server> $<TARGET_FILE:l4re_client>)

string(CONCAT _re
       "^Reader: waiting for lines on "
       "/dev/shm/shmcap.posix_lesson_test_[0-9]+\n"
       "(\\? )+\nfirst line\nsecond, longer line\n\nlast line\n$")
example_test(example_posix "${_re}"
  "posix_reader:|posix_writer:"
  run_pair.sh posix $<TARGET_FILE:posix_reader> $<TARGET_FILE:posix_writer>)

example_test(example_fork_int "^1234\n$" "fork_int:"
  run_one.sh $<TARGET_FILE:fork_int>)
example_test(example_fork_bytes
  "^100 101 102 103 104 105 106 107 108 109\n$" "fork_bytes:"
  run_one.sh $<TARGET_FILE:fork_bytes>)
example_test(example_fork_datum
  "^\\(1 2 #\\(3 4\\) ciao \"hello\" #vu8\\(99 98 97\\)\\)\n$" "fork_datum:"
  run_one.sh $<TARGET_FILE:fork_datum>)
