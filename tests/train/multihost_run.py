"""One process of a multi-process training run on this machine (CPU collectives):

    python tests/train/multihost_run.py RUN_DIR STEPS PROCESS_ID NUM_PROCESSES PORT [--resume] [key=value ...]

joins ``jax.distributed`` with the coordinator on 127.0.0.1:PORT (process 0 hosts it), then
trains the tiny job of ``tiny_run.py`` on the global mesh. NUM_PROCESSES=1 runs alone (no
distributed runtime): the reference, given 2 devices by XLA_FLAGS.
"""
import sys
from pathlib import Path


def main(argv):
    run_dir, steps, process_id, num_processes, port = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
    resume = "--resume" in argv
    extra = [a for a in argv[5:] if "=" in a]
    import jax

    if num_processes > 1:
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=num_processes, process_id=process_id,
                                   initialization_timeout=120)
    from tiny_run import make_dataset, tiny_config

    from pluralrm.train import fit

    train, test = make_dataset(400)
    model, result = fit(tiny_config(run_dir, steps, extra), train, test, resume=resume)
    if jax.process_index() == 0:  # the final parameters (a 1-device process cannot restore a 2-device checkpoint)
        import numpy as np
        from flax import nnx

        leaves = jax.tree_util.tree_leaves_with_path(nnx.state(model.net, nnx.Param))
        np.savez(run_dir + ".npz", **{jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves})
    print(f"DONE process {jax.process_index()}/{jax.process_count()} devices {len(jax.devices())} "
          f"steps {result.steps} eval {result.eval_metrics[-1]['groups'][0] if result.eval_metrics else None}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.path.insert(0, str(Path(__file__).parent))
    main(sys.argv[1:])
