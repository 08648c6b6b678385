"""Independent fits on worker processes: results in job order, identical to the serial run, one thread each."""

from __future__ import annotations

import torch

from riskstudy.nn.parallel import map_fits, one_thread_call, resolve_workers


def tiny_fit(seed: int, steps: int) -> tuple[int, int, list[float]]:
    """A seeded least-squares fit by SGD: its weights depend on every bit of the arithmetic."""
    torch.manual_seed(seed)
    x, y = torch.randn(256, 16), torch.randn(256, 1)
    lin = torch.nn.Linear(16, 1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(lin(x), y).backward()
        opt.step()
    return seed, torch.get_num_threads(), lin.weight.detach().flatten().tolist()


def test_workers_give_the_serial_results_in_job_order():
    jobs = [(s, 20) for s in (3, 1, 2)]
    seen = []
    serial = map_fits(tiny_fit, jobs, workers=1)
    parallel = map_fits(tiny_fit, jobs, workers=2, on_done=lambda i, r: seen.append(i))
    assert [r[0] for r in parallel] == [3, 1, 2] and sorted(seen) == [0, 1, 2]
    assert parallel == serial  # bit for bit, and every job ran on one thread
    assert all(r[1] == 1 for r in serial)
    assert serial[0][2] != serial[1][2]


def test_one_thread_call_restores_the_thread_count():
    before = torch.get_num_threads()
    assert one_thread_call(torch.get_num_threads, ()) == 1
    assert torch.get_num_threads() == before


def test_resolve_workers():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_workers(4, 3, cpu) == 3 and resolve_workers(2, 1, cpu) == 1
    assert resolve_workers("auto", 100, cpu) >= 1
    assert resolve_workers("auto", 10, cuda) == 1 and resolve_workers(8, 10, cuda) == 1
