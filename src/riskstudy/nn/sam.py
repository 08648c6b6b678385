r"""Sharpness-Aware Minimization (Foret, Kleiner, Mobahi, Neyshabur 2021) around any torch optimizer.

``pytorch-optimizer`` (whose SAM the issue names) is not on this project's package index, so SAM is
written here, following the paper: with the gradient :math:`g = \nabla L(w)`, the step is taken
with the gradient at the worst nearby point,

.. math:: \hat\epsilon = \rho \, \frac{g}{\|g\|_2}, \qquad
          w \leftarrow \mathrm{base\_step}\big(w, \nabla L(w + \hat\epsilon)\big),

(``adaptive=True``: :math:`\hat\epsilon = \rho\, T_w^2 g / \|T_w g\|`, :math:`T_w = |w|`, ASAM).
One SAM step needs two forward/backward passes; :meth:`SAM.step` takes a ``closure`` that
recomputes the loss and its gradients (it is called once, at the perturbed point).

Usage::

    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.025, momentum=0.95)
    loss = loss_fn(); loss.backward()          # gradient at w
    opt.step(closure)                          # closure: zero_grad, loss at w + eps, backward
    opt.zero_grad()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


class SAM(torch.optim.Optimizer):
    """SAM wrapping ``base_optimizer`` (a class, built on the same parameter groups).

    Parameters
    ----------
    params : iterable of tensors or dicts
    base_optimizer : type of torch.optim.Optimizer
    rho : float
        Neighbourhood radius (> 0).
    adaptive : bool
        ASAM's scale-invariant neighbourhood.
    **kwargs
        Arguments of the base optimizer (``lr``, ``momentum``, ...).
    """

    def __init__(self, params: Iterable, base_optimizer: type[torch.optim.Optimizer], *, rho: float = 0.05,
                 adaptive: bool = False, **kwargs) -> None:
        if rho <= 0:
            raise ValueError(f"SAM: rho must be > 0, got {rho}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    def _grad_norm(self) -> torch.Tensor:
        norms = [((torch.abs(p) if g["adaptive"] else 1.0) * p.grad).norm(p=2)
                 for g in self.param_groups for p in g["params"] if p.grad is not None]
        return torch.norm(torch.stack(norms), p=2) if norms else torch.tensor(0.0)

    @torch.no_grad()
    def first_step(self) -> None:
        """Move to :math:`w + \\hat\\epsilon` (remembering ``w``)."""
        scale_all = 1.0 / (self._grad_norm() + 1e-12)
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                e = (torch.pow(p, 2) if g["adaptive"] else 1.0) * p.grad * (g["rho"] * scale_all)
                self.state[p]["old_p"] = p.detach().clone()
                p.add_(e)

    @torch.no_grad()
    def second_step(self) -> None:
        """Back to ``w`` and the base optimizer's step with the gradient taken at :math:`w + \\hat\\epsilon`."""
        for g in self.param_groups:
            for p in g["params"]:
                if "old_p" in self.state[p]:
                    p.copy_(self.state[p].pop("old_p"))
        self.base_optimizer.step()

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """One SAM step; gradients at ``w`` must be populated, ``closure`` recomputes loss and gradients."""
        if closure is None:
            raise ValueError("SAM.step needs a closure that recomputes the loss and calls backward()")
        self.first_step()
        with torch.enable_grad():
            self.zero_grad()
            loss = closure()
        self.second_step()
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups
