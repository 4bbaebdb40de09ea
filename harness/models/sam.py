"""Sharpness-Aware Minimization (Foret et al., ICLR 2021), wrapping any torch optimizer.

Our own ~60 lines rather than a dependency: the algorithm is two small steps, and owning it lets
``state_dict`` carry the base optimizer's state (momentum, Adam moments) so a resumed run continues
exactly where it stopped.

Use::

    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=1e-3, momentum=0.9)
    loss_fn(model(x)).backward(); opt.first_step(zero_grad=True)   # climb to w + e(w)
    loss_fn(model(x)).backward(); opt.second_step(zero_grad=True)  # restore w, base step with g(w + e)

or ``opt.step(closure)`` where the closure does forward + backward and returns the loss.
``adaptive=True`` is ASAM (Kwon et al. 2021): the ascent is scaled per weight by |w|.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch


class SAM(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer_cls: type[torch.optim.Optimizer] = torch.optim.SGD,
        rho: float = 0.05,
        adaptive: bool = False,
        **base_kwargs: Any,
    ) -> None:
        if rho < 0:
            raise ValueError(f"SAM rho must be >= 0, got {rho}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **base_kwargs))
        # The base optimizer shares our param groups, so lr schedulers on SAM drive it too.
        self.base_optimizer = base_optimizer_cls(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = [
            ((p.abs() if group["adaptive"] else 1.0) * p.grad).norm(p=2)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        if not norms:
            return torch.tensor(0.0)
        return torch.stack([n.to(norms[0].device) for n in norms]).norm(p=2)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = True) -> None:
        """w <- w + rho * g / ||g|| (the sharpest nearby point); remembers w."""
        scale_base = self._grad_norm() + 1e-12
        for group in self.param_groups:
            scale = group["rho"] / scale_base
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.detach().clone()
                e_w = (p.pow(2) if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)
        if zero_grad:
            self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def second_step(self, zero_grad: bool = True) -> None:
        """Restore w and let the base optimizer step with the gradient taken at w + e(w)."""
        for group in self.param_groups:
            for p in group["params"]:
                old = self.state[p].pop("old_p", None)
                if old is not None:
                    p.copy_(old)
        self.base_optimizer.step()
        self._opt_called = True  # what torch's LR schedulers check (they only wrap .step)
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """One SAM update. ``closure`` must zero nothing, run forward + backward, return the loss;
        the gradients of the current point must already be computed (as after ``loss.backward()``)."""
        if closure is None:
            raise ValueError("SAM.step needs a closure that runs forward + backward (or call first_step/second_step)")
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state (moments, step counts) plus rho/adaptive in its param groups."""
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups  # load replaced the group dicts
        self.state.clear()  # no half-done SAM step survives a resume
