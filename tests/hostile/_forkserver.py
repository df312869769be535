"""Run many ``convprop`` command lines cheaply: import the command once, then fork one child
process per command line. Each child runs the real entry point (``sys.exit(main(argv))``, as
``python -m convprop`` does) with its own stdout, stderr and environment, and an uncaught
exception ends it exactly as the interpreter would (traceback on stderr, status 1).

Reads ``[[argv, env], ...]`` as JSON on stdin; writes ``[[status, stdout, stderr], ...]``."""

import json
import os
import sys
import tempfile
import traceback

import convprop.data
import convprop.io
import convprop.layers
import convprop.models
import convprop.train
import convprop.train.recipe  # noqa: F401 - imported once here, not once per child
from convprop.cli import _parser, main

_parser()  # imports every subcommand module once
try:
    import PIL.Image  # noqa: F401 - predict's image reader
except ImportError:
    pass


def _child(argv, env, out_path, err_path):
    os.environ.update(env or {})
    for fd, path in ((1, out_path), (2, err_path)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught error
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def run(cases):
    results = []
    with tempfile.TemporaryDirectory() as d:
        for i, (argv, env) in enumerate(cases):
            out, err = os.path.join(d, f"{i}.out"), os.path.join(d, f"{i}.err")
            pid = os.fork()
            if pid == 0:
                _child(argv, env, out, err)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            results.append([code, open(out, errors="replace").read(),
                            open(err, errors="replace").read()])
    return results


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
