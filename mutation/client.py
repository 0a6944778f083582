"""cosmic-ray's test command: asks the fork server (``mutation/forkserver.py``) to test the
mutant now in place and exits with the tests' status (0: the mutant survived).

    python -I -S mutation/client.py SOCKET
"""
import socket
import sys

with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
    connection.connect(sys.argv[1])
    connection.sendall(b"run")
    answer = connection.recv(16)
if not answer:  # the server is gone: say so rather than count the mutant as caught
    with open("harness-errors.log", "a") as log:  # forkserver.HARNESS_LOG (stdlib only here)
        log.write("the fork server did not answer\n")
sys.exit(int(answer) if answer else 1)
