// Implicit-feedback kernels: top-k selection over tiled GEMM scores, the iALS half-sweep
// (conjugate gradient or Cholesky per row) and the BPR Hogwild epoch. Plain pointers and sizes;
// no Python types. Index arrays are range-checked as the kernels read them.
#pragma once

#include <cstdint>

namespace recfast {

// Top-n items per query row: score[q, j] = Q[q] . V[cand[j]] + bias[cand[j]] for j < n_cand
// (cand == nullptr: every item, cand[j] = j; else ascending and unique), skipping items that are
// banned (mask, n_items) or stored in row q of the exclusion CSR (ex_indptr (m + 1), ex_indices
// item ids). Items with a score of -inf or NaN are never returned. out_items (m, n) best first,
// ties to the lower id; padded with -1 and -inf when fewer than n items remain.
template <typename T, typename I>
struct TopkArgs {
  const T* Q = nullptr;                // (m, k)
  const T* V = nullptr;                // (n_items, k)
  const T* bias = nullptr;             // (n_items,) or null
  const int64_t* cand = nullptr;       // (n_cand,) or null
  const uint8_t* banned = nullptr;     // (n_items,) or null
  const int64_t* ex_indptr = nullptr;  // (m + 1,) or null
  const I* ex_indices = nullptr;
  int64_t m = 0, k = 0, n_items = 0, n_cand = 0, n = 0;
  int64_t* out_items = nullptr;  // (m, n)
  T* out_scores = nullptr;       // (m, n)
  int num_threads = 1;
};

// One iALS half-sweep: for each row u of the CSR (indptr (n_rows + 1), indices into Y's rows,
// conf = c_ui > 0), X[u] solves (Y^T Y + lambda I + sum_i (c_ui - 1) y_i y_i^T) x = sum_i c_ui y_i.
// cg_steps > 0: that many conjugate-gradient steps from the current X[u]; 0: exact Cholesky.
// Returns the number of rows whose system was not positive definite (Cholesky) or whose
// solution is not finite; bad_index counts indices outside [0, n_cols) (skipped).
template <typename T, typename I>
struct AlsArgs {
  const int64_t* indptr = nullptr;
  const I* indices = nullptr;
  const T* conf = nullptr;
  T* X = nullptr;                 // (n_rows, k), updated
  const T* Y = nullptr;           // (n_cols, k)
  const T* gram = nullptr;        // (k, k) Y^T Y when the caller has it cached, or null
  const int64_t* rows = nullptr;  // (n_solve,) rows of X to solve, or null: all rows
  int64_t n_solve = 0;
  int64_t n_rows = 0, n_cols = 0, k = 0;
  double regularization = 0;
  int cg_steps = 3;
  int num_threads = 1;
  int64_t* bad_index = nullptr;
};

// One BPR epoch of n_samples Hogwild SGD steps. Thread t draws its samples from its own
// splitmix64 stream seeded by (seed, t): a positive (u, i) uniformly among the nnz stored
// entries (row_of gives u), a negative j uniformly among the items; j stored in row u (sorted
// indices, binary search) skips the sample. With z = sigmoid(-x_uij), x_uij = U[u].(V[i] - V[j])
// + b_i - b_j: U[u] += lr (z (V[i] - V[j]) - reg U[u]), V[i] += lr (z U[u] - reg V[i]),
// V[j] += lr (-z U[u] - reg V[j]), b_i += lr (z - reg b_i), b_j += lr (-z - reg b_j), all from
// the old values. popularity: j is the item of a second uniformly drawn stored entry instead
// (negatives in proportion to their popularity, as implicit samples them).
template <typename T, typename I>
struct BprArgs {
  const int64_t* indptr = nullptr;  // (n_users + 1,)
  const I* indices = nullptr;       // (nnz,) sorted within each row
  const I* row_of = nullptr;        // (nnz,) the row of each entry
  T* U = nullptr;                   // (n_users, k)
  T* V = nullptr;                   // (n_items, k)
  T* bias = nullptr;                // (n_items,) or null
  int64_t n_users = 0, n_items = 0, k = 0, nnz = 0, n_samples = 0;
  double learning_rate = 0.01, regularization = 0.01;
  uint64_t seed = 0;
  bool popularity = false;
  int num_threads = 1;
};

struct BprResult {
  double loss = 0;      // sum of softplus(-x_uij) over the updated samples
  int64_t correct = 0;  // samples with x_uij > 0 (before their update)
  int64_t updated = 0;  // samples not skipped
  int64_t skipped = 0;  // negatives that were positives
  int64_t bad_index = 0;
};

template <typename T, typename I>
void topk(const TopkArgs<T, I>& a);
template <typename T, typename I>
int64_t als_half_sweep(const AlsArgs<T, I>& a);
template <typename T, typename I>
BprResult bpr_epoch(const BprArgs<T, I>& a);

// splitmix64: the BPR samplers' generator (the reference and numba backends run the same one).
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace recfast
