"""One short run of a fused GPU kernel, for compute-sanitizer (bench/gpu/run.sh).

    python bench/gpu/sanitize_case.py sample|scan|decode [--backend cuda]

Small shapes that still cover the kernels' paths: a partial batch tile, odd H (padded columns),
W_hh on chip (H = 40), split over a cluster or streamed (H = 256), split over the whole grid
(H = 1024, B = 2), bfloat16 at B = 256 (scan and decode: tensor cores, 16 rows a cluster),
C = 3 channels, known values.
"""

import argparse

import torch

import rnngen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=("sample", "scan", "decode"))
    parser.add_argument("--backend", default="cuda")
    args = parser.parse_args()
    dev, backend = "cuda", args.backend
    torch.manual_seed(0)
    for B, H, dtype in ((5, 40, torch.float32), (3, 256, torch.float32), (2, 1024, torch.float32),
                        (256, 256, torch.bfloat16)):
        kw = {"device": dev, "dtype": dtype}
        if args.case == "sample":
            C, K, T = 3, 19, 12
            known = torch.full((B, T), -1, device=dev)
            known[:, 4] = 2
            v = rnngen.sample(torch.randn(B, H, **kw), torch.randn(C, K, 3 * H, **kw),
                              torch.randn(3 * H, H, **kw) / H**0.5, torch.randn(3 * H, **kw),
                              torch.randn(C, K, H, **kw), torch.randn(C, K, **kw), T,
                              cond=torch.randn(B, 3 * H, **kw), seed=3, known=known, backend=backend)
            print(args.case, B, H, v.sum().item())
        elif args.case == "scan":
            T = 9
            gi = torch.randn(B, T, 3 * H, **kw, requires_grad=True)
            w = (torch.randn(3 * H, H, **kw) / H**0.5).requires_grad_()
            h0 = torch.randn(B, H, **kw, requires_grad=True)
            out = rnngen.scan(gi, h0, w, torch.randn(3 * H, **kw), backend=backend)
            out.square().sum().backward()
            print(args.case, B, H, out.sum().item(), w.grad.norm().item(), h0.grad.norm().item())
        else:
            C, T = 3, 7
            ps = [torch.randn(B, H, **kw), torch.randn(3 * H, C, **kw), torch.randn(3 * H, **kw),
                  torch.randn(3 * H, H, **kw) / H**0.5, torch.randn(3 * H, **kw),
                  torch.randn(C, H, **kw) / H**0.5, torch.randn(C, **kw)]
            ps = [p.requires_grad_() for p in ps]
            out, hidden = rnngen.decode(*ps, T, backend=backend, return_hidden=True)
            (out.square().sum() + hidden.sum()).backward()
            print(args.case, B, H, out.sum().item(), sum(p.grad.norm().item() for p in ps))
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
