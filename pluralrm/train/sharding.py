"""One device mesh for the whole run: batches shard over ``data``, parameters replicate or shard
(FSDP style) over ``model``. The same code runs on 1 CPU, 8 fake CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``), a GPU or a TPU slice; multi-host runs
call ``jax.distributed.initialize()`` first and each process feeds its own rows of the batch.
"""
from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from pluralrm.errors import ConfigError
from pluralrm.train.config import MeshConfig


def initialize_distributed(config: MeshConfig) -> None:
    """Joins a multi-host run (``jax.distributed.initialize`` reads the cluster environment)."""
    if config.distributed and jax.process_count() == 1:
        jax.distributed.initialize()


def make_mesh(config: MeshConfig) -> Mesh:
    """A mesh with axes (``data``, ``model``) over all devices of all processes."""
    devices = jax.devices()
    n = len(devices)
    model = config.model
    if model < 1 or n % model:
        raise ConfigError(f"mesh.model={model} must divide the number of devices ({n})")
    data = n // model if config.data == -1 else config.data
    if data * model != n:
        raise ConfigError(
            f"mesh data={config.data} x model={model} does not use the {n} devices; "
            "use data=-1 to take the rest"
        )
    # Auto axes: explicit sharding (jax 0.10's default for make_mesh) breaks nnx.Embed.
    return jax.make_mesh((data, model), ("data", "model"), axis_types=(AxisType.Auto, AxisType.Auto))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis over ``data``; everything else replicated."""
    return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    per_process = mesh.shape["data"]
    if batch_size % per_process:
        raise ConfigError(
            f"train.batch_size={batch_size} must be divisible by the data axis "
            f"({mesh.shape['data']} devices)"
        )
    if batch_size % jax.process_count():
        raise ConfigError(
            f"train.batch_size={batch_size} must be divisible by the number of processes "
            f"({jax.process_count()})"
        )


def put_batch(batch: Any, mesh: Mesh) -> Any:
    """This process's rows of a global batch → global arrays sharded over ``data``."""
    sharding = batch_sharding(mesh)

    def put(x):
        x = np.asarray(x)
        global_shape = (x.shape[0] * jax.process_count(),) + x.shape[1:]
        return jax.make_array_from_process_local_data(sharding, x, global_shape)

    return jax.tree.map(put, batch)


def param_sharding(x: Any, mesh: Mesh, config: MeshConfig) -> NamedSharding:
    """Replicated, or (FSDP) the largest dimension divisible by the ``model`` axis sharded.

    Parameters below ``fsdp_min_size`` elements stay replicated: sharding a bias costs more in
    communication than it saves in memory. A parameter with sharding metadata of its own
    (``sharding_names`` naming ``model``) keeps it.
    """
    shape = np.shape(x)
    size = mesh.shape["model"]
    if not config.fsdp or size == 1 or math.prod(shape) < config.fsdp_min_size:
        return replicated(mesh)
    names = getattr(x, "sharding_names", None) or getattr(x, "sharding", None)
    if isinstance(names, (tuple, list)) and "model" in names and len(names) == len(shape):
        spec = tuple("model" if n == "model" and shape[i] % size == 0 else None for i, n in enumerate(names))
        return NamedSharding(mesh, P(*spec))
    dims = sorted(range(len(shape)), key=lambda i: -shape[i])
    for i in dims:
        if shape[i] % size == 0:
            spec = [None] * len(shape)
            spec[i] = "model"
            return NamedSharding(mesh, P(*spec))
    return replicated(mesh)


def place(x: Any, sharding: NamedSharding) -> jax.Array:
    """``x`` (the same value on every process) as a global array with ``sharding``.

    With several processes, ``device_put`` of an array committed to one local device makes a
    global array whose shards cannot be read back (Orbax fails saving it), so each process
    builds its addressable shards from a host copy instead.
    """
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    host = np.asarray(jax.device_get(x))
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def commit_to_mesh(tree: Any, mesh: Mesh) -> Any:
    """Places every leaf not already on ``mesh`` (fresh scalars such as the step counter and
    the optimizer's counts) replicated on it.

    A jitted step keys its compilation on its inputs' shardings, and its outputs live on the
    mesh: a first state with uncommitted leaves would compile the step twice (once for the
    first call, once for every later one).
    """

    def put(x):
        current = getattr(x, "sharding", None)
        if isinstance(current, NamedSharding) and current.mesh == mesh:
            return x
        return place(x, replicated(mesh))

    return jax.tree.map(put, tree)


def shard_state(state: Any, mesh: Mesh, config: MeshConfig) -> Any:
    """Places every array leaf of a (params, optimizer) pytree per ``param_sharding``."""
    return jax.tree.map(lambda x: place(x, param_sharding(x, mesh, config)), state)
