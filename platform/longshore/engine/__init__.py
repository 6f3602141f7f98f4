"""The Docker boundary: the wrapped and timed client, the error classifier, the container spec, the job contract.

It imports the domain and `errors` and nothing above them, never the store or the broker.
"""

from longshore.engine.client import DockerEngine, ExitReport
from longshore.engine.container import ContainerSpec

__all__ = ["DockerEngine", "ExitReport", "ContainerSpec"]
