"""light/cliboundary.run_command: the one error boundary of dotbit-resolve, -connect and -tunnel."""
from __future__ import annotations

import pytest

from light.cliboundary import run_command


class Usage(Exception):
    pass


class Special(Usage):
    pass


def raising(e):
    def body():
        raise e
    return body


@pytest.mark.parametrize("error, code, line", [
    (Special("deep"), 2, "prog: special: deep"),            # first match in order wins
    (Usage("bad flag"), 2, "prog: usage: bad flag"),
    (FileNotFoundError(2, "No such file"), 2, "prog: I/O error: [Errno 2] No such file"),
    (KeyError("oops"), 2, "prog: internal error: KeyError: 'oops'"),
    (KeyboardInterrupt(), 130, ""),
])
def test_each_error_is_one_line_and_an_exit_code(capsys, error, code, line):
    assert run_command("prog", raising(error), [(Special, "special: "), (Usage, "usage: ")]) == code
    err = capsys.readouterr().err
    assert err == (line + "\n" if line else "")


def test_the_body_exit_code_passes_through(capsys):
    assert run_command("prog", lambda: 7, []) == 7
    assert capsys.readouterr().err == ""


def test_a_closed_pipe_is_quiet_141(capfd):
    assert run_command("prog", raising(BrokenPipeError()), []) == 141
    assert capfd.readouterr().err == ""


def test_exit_from_argparse_is_not_caught():
    with pytest.raises(SystemExit):
        run_command("prog", raising(SystemExit(2)), [])
