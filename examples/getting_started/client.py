"""Send tasks to a running worker and print the results: ``python client.py``."""

from tasks import add, fail, hello

from celeriac.exceptions import TimeoutError


def main() -> None:
    """Send a few tasks and print what comes back."""
    try:
        print("add(4, 4) =", add.delay(4, 4).get(timeout=10))
    except TimeoutError:
        raise SystemExit("no worker answered: start one with `celeriac -A tasks worker`") from None
    print(hello.delay("world").get(timeout=10))
    results = [add.delay(i, i) for i in range(10)]
    print("ten adds:", [r.get(timeout=10) for r in results])
    try:
        fail.delay("boom").get(timeout=10)
    except ValueError as exc:
        print("fail() raised ValueError:", exc)


if __name__ == "__main__":
    main()
