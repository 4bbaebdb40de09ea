"""SAM: the two steps do what Foret et al. define, closures match the manual form, resume is exact."""

from __future__ import annotations

import warnings

import pytest
import torch

from harness.models import SAM


def _quadratic(w: torch.Tensor) -> torch.Tensor:
    a = torch.tensor([[3.0, 1.0], [1.0, 2.0]])
    return 0.5 * w @ a @ w


def test_first_step_climbs_rho_along_the_normalised_gradient_and_second_step_uses_it():
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = SAM([w], torch.optim.SGD, rho=0.1, lr=0.5)
    a = torch.tensor([[3.0, 1.0], [1.0, 2.0]])
    w0 = w.detach().clone()
    g0 = a @ w0
    _quadratic(w).backward()
    opt.first_step(zero_grad=True)
    e = 0.1 * g0 / g0.norm()
    assert torch.allclose(w.detach(), w0 + e, atol=1e-6)
    assert w.grad is None
    _quadratic(w).backward()
    opt.second_step()
    g_sharp = a @ (w0 + e)  # gradient at the perturbed point, applied to the original weights
    assert torch.allclose(w.detach(), w0 - 0.5 * g_sharp, atol=1e-6)


def test_adaptive_ascent_scales_by_weight_magnitude():
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = SAM([w], torch.optim.SGD, rho=0.1, adaptive=True, lr=0.5)
    w0 = w.detach().clone()
    _quadratic(w).backward()
    g = w.grad.clone()
    opt.first_step()
    e = 0.1 * w0.pow(2) * g / (w0.abs() * g).norm()
    assert torch.allclose(w.detach(), w0 + e, atol=1e-6)


def _model_and_data():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    return model, x, y


def _loss(model, x, y):
    return torch.nn.functional.mse_loss(model(x), y)


def test_step_with_closure_equals_manual_two_steps():
    results = []
    for use_closure in (False, True):
        model, x, y = _model_and_data()
        opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
        for _ in range(3):
            _loss(model, x, y).backward()
            if use_closure:
                opt.step(lambda: _loss(model, x, y).backward())
            else:
                opt.first_step(zero_grad=True)
                _loss(model, x, y).backward()
                opt.second_step(zero_grad=True)
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(results[0], results[1])


@pytest.mark.parametrize("base, kwargs", [(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}), (torch.optim.AdamW, {"lr": 0.01})])
def test_state_dict_round_trip_resumes_exactly(base, kwargs):
    def run(steps, opt, model, x, y):
        for _ in range(steps):
            _loss(model, x, y).backward()
            opt.first_step()
            _loss(model, x, y).backward()
            opt.second_step()

    model, x, y = _model_and_data()
    opt = SAM(model.parameters(), base, rho=0.05, **kwargs)
    run(5, opt, model, x, y)
    straight = [p.detach().clone() for p in model.parameters()]

    model, x, y = _model_and_data()
    opt = SAM(model.parameters(), base, rho=0.05, **kwargs)
    run(3, opt, model, x, y)
    saved_model = {k: v.clone() for k, v in model.state_dict().items()}
    saved_opt = opt.state_dict()
    assert saved_opt["state"], "base optimizer state (momentum / moments) must be saved"

    model2, _, _ = _model_and_data()
    model2.load_state_dict(saved_model)
    opt2 = SAM(model2.parameters(), base, rho=0.05, **kwargs)
    opt2.load_state_dict(saved_opt)
    run(2, opt2, model2, x, y)
    for a, b in zip(straight, model2.parameters()):
        assert torch.equal(a, b.detach())


def test_lr_scheduler_on_sam_drives_the_base_optimizer():
    model, x, y = _model_and_data()
    opt = SAM(model.parameters(), torch.optim.SGD, lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    _loss(model, x, y).backward()
    opt.first_step()
    _loss(model, x, y).backward()
    opt.second_step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "scheduler.step() before optimizer.step()" warning
        sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == 0.5


def test_bad_arguments():
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="rho"):
        SAM([w], rho=-1.0, lr=0.1)
    with pytest.raises(ValueError, match="closure"):
        SAM([w], lr=0.1).step()
