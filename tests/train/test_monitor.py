"""The progress display: says "compiling" before the first step, redraws from dispatched steps
at most every ``refresh_s``, and prints plain lines at log points when not on a terminal."""
import time

from pluralrm.train.monitor import ProgressBar


def test_plain_lines_say_compiling_then_log_points(capsys):
    bar = ProgressBar(total=10, start=0, enabled=True, log_every=5)
    for step in range(1, 11):
        bar.advance(step)
        if step % 5 == 0:
            bar.update(step, step * 4, {"loss": 0.5, "acc": None})
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "step 0/10: compiling the train step..."
    assert lines[1].startswith("step 5/10  loss 0.5  acc n/a") and lines[2].startswith("step 10/10")
    assert len(lines) == 3


def test_terminal_bar_redraws_from_dispatched_steps_time_based(monkeypatch):
    from rich.console import Console

    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    bar = ProgressBar(total=100, start=0, enabled=True, log_every=50, refresh_s=0.05)
    task = bar._progress.tasks[0]
    assert "compiling" in task.fields["status"] and task.completed == 0
    bar.advance(1)  # the first step was dispatched: compilation is over
    assert task.completed == 1 and task.fields["status"] == "running"
    bar.advance(2)  # within refresh_s: not redrawn
    assert task.completed == 1
    time.sleep(0.06)
    bar.advance(3)
    assert task.completed == 3
    bar.close()
