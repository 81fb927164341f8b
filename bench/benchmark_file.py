#!/usr/bin/python3
"""Read an ncl benchmark file (from `ncl gen`) in Python, and score baselines on it.

The file is safetensors: an 8-byte little-endian header length, a JSON header, raw data
(layout in data/benchmark.h). Only numpy is needed to read it; the baselines need scikit-learn
(Debian: apt-get install python3-sklearn). Not part of the build or the tests.

    ncl gen --data mog-k4 --datasets 1000 --seed 0 --out mog-k4.safetensors
    /usr/bin/python3 bench/benchmark_file.py mog-k4.safetensors [--datasets M]

prints, averaged over datasets like `ncl eval`: ARI, NMI, k-MAE, per-point log-likelihood and
ms per dataset of scikit-learn's GaussianMixture told the true K (diagonal covariances, as the
models predict) and of its Dirichlet-process mixture (BayesianGaussianMixture): once with one
truncation level for the whole file (--dp-components, default twice the most clusters in any of
its datasets), not told K, and once with K_max = 2·K_true (told each dataset's K); either
capped at the dataset's N (crp-mog has datasets of 5 points).
"""
import argparse
import json
import struct
import time

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32}


def read_benchmark(path):
    """Returns (metadata, datasets); each dataset is a dict with points (N, D), labels (N) and,
    when the file has it, the true mixture: weights (K), means (K, D), stddevs (K, D)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    if meta.get("format") != "ncl-benchmark":
        raise SystemExit(f"{path}: not an ncl benchmark file")
    t = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        t[name] = np.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    datasets = []
    off = t["offsets"]
    for m in range(len(off) - 1):
        d = {"points": t["points"][off[m]:off[m + 1]].astype(np.float64),
             "labels": t["labels"][off[m]:off[m + 1]]}
        if "truth.offsets" in t:
            k0, k1 = t["truth.offsets"][m], t["truth.offsets"][m + 1]
            d["weights"] = t["truth.weights"][k0:k1]
            d["means"] = t["truth.means"][k0:k1]
            d["stddevs"] = t["truth.stddevs"][k0:k1]
        datasets.append(d)
    return meta, datasets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--datasets", type=int, default=None)
    parser.add_argument("--dp-components", type=int, default=None,
                        help="components of the DP mixture that is not told K (default: twice "
                             "the most clusters any dataset of the file has)")
    args = parser.parse_args()
    meta, datasets = read_benchmark(args.path)
    datasets = datasets[: args.datasets]
    print(f"{args.path}: {len(datasets)} datasets from {meta.get('generator')} (seed {meta.get('seed')})")

    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

    def score(name, make):
        ari = nmi = kmae = ll = seconds = 0.0
        for d in datasets:
            k = len(np.unique(d["labels"]))
            start = time.perf_counter()
            model = make(k, len(d["points"])).fit(d["points"])
            pred = model.predict(d["points"])
            seconds += time.perf_counter() - start
            ari += adjusted_rand_score(d["labels"], pred)
            nmi += normalized_mutual_info_score(d["labels"], pred)
            kmae += abs(k - len(np.unique(pred)))
            ll += model.score(d["points"])
        n = len(datasets)
        print(f"{name:44s} ARI {ari / n:.4f}  NMI {nmi / n:.4f}  k-MAE {kmae / n:.3f}  "
              f"LL {ll / n:.4f}  {1e3 * seconds / n:.1f} ms/dataset")

    score("GaussianMixture (true K, diagonal)",
          lambda k, n: GaussianMixture(k, covariance_type="diag", random_state=0))
    cap = args.dp_components or 2 * max(len(np.unique(d["labels"])) for d in datasets)
    score(f"BayesianGaussianMixture (DP, K_max = {cap})",
          lambda k, n: BayesianGaussianMixture(n_components=min(cap, n), covariance_type="diag",
                                            weight_concentration_prior_type="dirichlet_process",
                                            max_iter=500, random_state=0))
    score("BayesianGaussianMixture (DP, K_max = 2K)",
          lambda k, n: BayesianGaussianMixture(n_components=min(2 * k, n), covariance_type="diag",
                                            weight_concentration_prior_type="dirichlet_process",
                                            max_iter=500, random_state=0))


if __name__ == "__main__":
    main()
