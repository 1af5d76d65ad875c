"""The getting-started tasks: ``celeriac -A tasks worker``, then send from any process."""

from celeriac import App

# The broker defaults to tcp://127.0.0.1:5555: with no broker configured the worker starts an
# embedded hub there when none answers, so there is nothing else to install. Given an address
# (CELERIAC_BROKER_URL, --broker) a worker waits for the hub there (--embedded-hub always: be it).
app = App("tasks")


@app.task
def add(x: int, y: int) -> int:
    """Add two numbers on a worker."""
    return x + y


@app.task(bind=True)
def hello(self, name: str) -> str:  # type: ignore[no-untyped-def]
    """Greet, logging with the task id bound (self.log) and reading self.request."""
    self.log.info("greeting", name=name)
    return f"hello {name} from {self.request.hostname}"


@app.task
def fail(message: str) -> None:
    """Always fail: the client's get() re-raises this ValueError."""
    raise ValueError(message)
