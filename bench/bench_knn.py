"""k-NN benchmark: Fashion-MNIST 10,000 test queries vs 60,000 training
images, 784 dims, k=10, cosine, one thread per side.

  mlops : mlk_knn_tool fmnist (IDX reader, normalise, tiled sgemm + top-k)
  anchor: faiss IndexFlatIP on L2-normalised float32 (same process run)

Both sides get OPENBLAS_CORETYPE=SkylakeX when the CPU has AVX-512F
(Debian's OpenBLAS 0.3.21 otherwise may fall back to Prescott); the
kernel each side ended up with is printed. Also measured in the same run:
raw single-thread sgemm GFLOP/s (4096^3 through the tool), the k-NN's
effective GFLOP/s (2*nq*nx*d / time) as a fraction of it, and the
classification accuracy against scikit-learn's brute-force cosine
KNeighborsClassifier (0.8529 expected). Timings exclude file loading on
both sides and include normalisation. Writes bench/out/knn.ratio:
faiss time / mlops time (target >= 1.0x)."""
import os
import subprocess
import sys
import time

REPS = int(os.environ.get("KNN_BENCH_REPS", "3"))
for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"
with open("/proc/cpuinfo") as f:
    AVX512 = " avx512f" in f.read()
if AVX512 and not os.environ.get("OPENBLAS_CORETYPE"):
    os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"

import gzip  # noqa: E402

import numpy as np  # noqa: E402
import faiss  # noqa: E402

BUILD = os.environ.get("MLOPS_BUILD_DIR", "build")
SRC = os.environ.get("MLOPS_SOURCE_DIR", ".")
TOOL = os.path.join(BUILD, "mlk_knn_tool")
D = "/usr/share/datasets/fashion-mnist"
NQ, NX, DIM, K = 10000, 60000, 784, 10
FLOP = 2.0 * NQ * NX * DIM


def tool(*args):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True, env=os.environ)
    if r.returncode != 0:
        sys.exit(f"{TOOL} {' '.join(args)} failed: {r.stderr}")
    return dict(line.split("=", 1) for line in r.stdout.split())


def load(name, off):
    with gzip.open(os.path.join(D, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=off)


def blas_info():
    try:
        from threadpoolctl import threadpool_info
        return "; ".join(f"{i.get('internal_api')} {i.get('architecture')} ({os.path.basename(i.get('filepath', ''))})"
                         for i in threadpool_info() if i.get("user_api") == "blas")
    except Exception as e:  # informative only
        return f"unknown ({e})"


def main():
    xs = load("train-images-idx3-ubyte.gz", 16).reshape(NX, DIM).astype(np.float32)
    qs = load("t10k-images-idx3-ubyte.gz", 16).reshape(NQ, DIM).astype(np.float32)
    xl = load("train-labels-idx1-ubyte.gz", 8)
    ql = load("t10k-labels-idx1-ubyte.gz", 8)
    faiss.omp_set_num_threads(1)
    print(f"CPU AVX-512F: {AVX512}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}")

    gf = [float(tool("sgemm", "--n", "4096", "--reps", "2")["sgemm_gflops"]) for _ in range(REPS)]
    c_t, f_t, c_cpu, f_cpu, c_out = [], [], [], [], None
    pred_path = os.path.join(BUILD, "bench_knn_pred_uniform.i32")
    for r in range(REPS):
        c_out = tool("fmnist", "--dir", D, "--k", str(K), "--pred-uniform", pred_path)
        c_t.append(float(c_out["search_seconds"]))
        c_cpu.append(float(c_out["search_cpu_seconds"]))
        t0 = time.perf_counter()
        p0 = time.process_time()
        x = xs.copy()
        q = qs.copy()
        faiss.normalize_L2(x)
        faiss.normalize_L2(q)
        index = faiss.IndexFlatIP(DIM)
        index.add(x)
        _, fi = index.search(q, K)
        f_t.append(time.perf_counter() - t0)
        f_cpu.append(time.process_time() - p0)
        print(f"rep {r}: mlops {c_t[-1]:.3f} s (cpu {c_cpu[-1]:.3f}), "
              f"faiss {f_t[-1]:.3f} s (cpu {f_cpu[-1]:.3f})")
    print(f"mlops OpenBLAS kernel: {c_out['corename']}; faiss side BLAS: {blas_info()}")
    c_med, f_med, g_med = np.median(c_t), np.median(f_t), np.median(gf)
    eff = FLOP / c_med / 1e9
    print(f"sgemm 4096^3 single thread: median {g_med:.1f} GFLOP/s (runs {', '.join(f'{g:.1f}' for g in gf)})")
    print(f"mlops k-NN: median {c_med:.3f} s = {eff:.1f} GFLOP/s effective = "
          f"{eff / g_med:.0%} of sgemm (target >= 70%)")
    print(f"faiss IndexFlatIP: median {f_med:.3f} s = {FLOP / f_med / 1e9:.1f} GFLOP/s")
    print(f"CPU-time medians (less sensitive to a busy machine): mlops {np.median(c_cpu):.3f} s, "
          f"faiss {np.median(f_cpu):.3f} s, ratio {np.median(f_cpu) / np.median(c_cpu):.2f}x")
    ours = np.fromfile(pred_path, np.int32)
    print(f"mlops accuracy: uniform {c_out['accuracy_uniform']}, distance {c_out['accuracy_distance']}")

    from sklearn.neighbors import KNeighborsClassifier
    t0 = time.perf_counter()
    clf = KNeighborsClassifier(n_neighbors=K, metric="cosine", algorithm="brute").fit(xs, xl)
    ref = clf.predict(qs)
    print(f"scikit-learn accuracy {np.mean(ref == ql):.4f} ({time.perf_counter() - t0:.1f} s); "
          f"predictions identical to mlops on {np.sum(ref == ours)}/{NQ} queries")
    ratio = f_med / c_med
    line = f"knn: ratio {ratio:.2f}x (target >= 1.0x)"
    print(line)
    os.makedirs(os.path.join(SRC, "bench", "out"), exist_ok=True)
    with open(os.path.join(SRC, "bench", "out", "knn.ratio"), "w") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
