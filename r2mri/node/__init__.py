"""``r2mri serve``: a DICOM node that receives liver studies, analyses them and sends
the results back (docs/node.md).

One module per job: :mod:`~r2mri.node.config` (settings), :mod:`~r2mri.node.scp`
(storage SCP), :mod:`~r2mri.node.spool` (received instances, job folders),
:mod:`~r2mri.node.queue` (durable job states, SQLite), :mod:`~r2mri.node.worker`
(analysis processes), :mod:`~r2mri.node.notice` (failure notice),
:mod:`~r2mri.node.scu` (storage SCU), :mod:`~r2mri.node.logs` (JSON lines) and
:mod:`~r2mri.node.service` (the scheduler tying them together).
"""

from .config import NodeConfig, load_config

__all__ = ["NodeConfig", "load_config", "Node"]


def __getattr__(name: str):
    if name == "Node":  # pynetdicom is imported only when a node is built
        from .service import Node

        return Node
    raise AttributeError(name)
