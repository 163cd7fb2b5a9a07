"""A local stand-in for the Argo CD application API that reads a real GitOps repository.

Applications follow the branch of a bare git repository and move, over accelerated (or manually
driven) time, through the states a real controller reports: OutOfSync → operation Running →
Synced/Progressing → Healthy, or Degraded / sync Failed / ComparisonError for tags marked so.
See model.py for the timeline and server.py for the HTTP surface.
"""

from devstack.argocd_sim.config import MARKS, Mark, SimApp, SimConfig, SimTiming
from devstack.argocd_sim.control import ArgoCDSimControl, SimulatorError, make_token, start_argocd_sim
from devstack.argocd_sim.gitrepo import GitOpsRepo
from devstack.argocd_sim.tls import TlsFiles, make_tls_files

__all__ = [
    "MARKS",
    "ArgoCDSimControl",
    "GitOpsRepo",
    "Mark",
    "SimApp",
    "SimConfig",
    "SimTiming",
    "SimulatorError",
    "TlsFiles",
    "make_tls_files",
    "make_token",
    "start_argocd_sim",
]
