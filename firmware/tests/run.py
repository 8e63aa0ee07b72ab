# Tiny test runner for the MicroPython unix port (unittest is not built in).
# Usage: MICROPYPATH=firmware/sim:firmware:firmware/tests:.frozen micropython firmware/tests/run.py test_x [test_y ...]
# Prints one line per test: "PASS module.test_name" or "FAIL module.test_name: ExcType: message",
# then "DONE". tests/test_firmware_logic.py turns each line into a pytest result.
# Tests are plain functions named test_* that use assert; they get no arguments.
import sys


def run_module(name):
    try:
        mod = __import__(name)
    except Exception as e:  # an import error fails every test of the module, reported once
        print("FAIL %s.<import>: %s: %s" % (name, type(e).__name__, e))
        return
    for attr in sorted(dir(mod)):
        if not attr.startswith("test_"):
            continue
        fn = getattr(mod, attr)
        try:
            fn()
            print("PASS %s.%s" % (name, attr))
        except Exception as e:
            print("FAIL %s.%s: %s: %s" % (name, attr, type(e).__name__, e))
            if "-v" in sys.argv:
                sys.print_exception(e)


for arg in sys.argv[1:]:
    if not arg.startswith("-"):
        run_module(arg)
print("DONE")
