"""A finite Markov decision process as arrays: the model that planning algorithms solve.

``P[s, a, s']`` is the probability of moving from s to s' under a, ``R[s, a]`` the expected reward,
and ``P_continue`` the part of ``P`` whose transitions are *not* flagged terminated. Bellman backups
bootstrap through ``P_continue`` only, so a terminated transition earns its reward and then nothing
(which is what makes γ = 1 converge on episodic MDPs).

Small models keep ``P`` as a dense ``(S, A, S)`` array; large ones as one scipy CSR matrix of shape
``(S*A, S)`` whose row ``s*A + a`` is ``P[s, a, :]``. Either way :attr:`FiniteMDP.continue_matrix`
is an ``(S*A, S)`` matrix, so a whole sweep is one matrix-vector product: ``Q = R + γ (P_c V).reshape(S, A)``.

Only numpy and scipy are used here (``core`` never imports torch or gymnasium).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from llmagentos.core.errors import UsageError

#: models with at most this many (s, a, s') entries are stored dense when ``sparse=None``
DENSE_LIMIT = 1_000_000


class FiniteMDP:
    """A finite MDP: ``P[s, a, s']`` (dense or sparse), expected reward ``R[s, a]``, terminated transitions.

    Args:
        P: transition probabilities, a dense ``(S, A, S)`` array or an ``(S*A, S)`` scipy sparse matrix
            (row ``s*A + a``); every row must sum to 1.
        R: expected immediate reward ``R[s, a] = Σ_s' P[s,a,s'] r(s,a,s')``, shape ``(S, A)``.
        P_terminal: the part of ``P`` whose transitions end the episode (same form as ``P``);
            ``None`` means no transition terminates (a continuing MDP).
        initial: the start-state distribution, shape ``(S,)`` (uniform when ``None``).
        name: a label (the Gymnasium id for converted envs).
    """

    def __init__(self, P: Any, R: np.ndarray, P_terminal: Any = None, initial: np.ndarray | None = None,
                 name: str = "mdp") -> None:
        R = np.asarray(R, dtype=np.float64)
        if R.ndim != 2:
            raise UsageError(f"R must have shape (S, A), got {R.shape}")
        self.n_states, self.n_actions = R.shape
        S, A = R.shape
        self.sparse = sp.issparse(P)
        if self.sparse:
            P = sp.csr_matrix(P, dtype=np.float64)
            if P.shape != (S * A, S):
                raise UsageError(f"sparse P must have shape (S*A, S) = {(S * A, S)}, got {P.shape}")
            P.sum_duplicates()
            if P_terminal is not None:
                P_terminal = sp.csr_matrix(P_terminal, dtype=np.float64)
                P_terminal.sum_duplicates()
        else:
            P = np.asarray(P, dtype=np.float64)
            if P.shape != (S, A, S):
                raise UsageError(f"dense P must have shape (S, A, S) = {(S, A, S)}, got {P.shape}")
            if P_terminal is not None:
                P_terminal = np.asarray(P_terminal.toarray() if sp.issparse(P_terminal) else P_terminal,
                                        dtype=np.float64).reshape(S, A, S)
        row_sums = np.asarray(P.sum(axis=-1)).reshape(-1)
        if not np.allclose(row_sums, 1.0, atol=1e-6):
            worst = int(np.argmax(np.abs(row_sums - 1.0)))
            raise UsageError(f"P[{worst // A}, {worst % A}, :] sums to {row_sums[worst]:.6g}, not 1")
        self.P = P
        self.R = R
        self.P_terminal = P_terminal
        self.initial = (np.full(S, 1.0 / S) if initial is None else np.asarray(initial, dtype=np.float64))
        self.name = name
        # the matrix every backup multiplies by: P minus the probability of terminated transitions
        if P_terminal is None:
            continuing = P
        else:
            continuing = P - P_terminal
            if self.sparse:
                continuing.eliminate_zeros()
        self._continue = continuing.reshape(S * A, S) if not self.sparse else continuing.tocsr()

    # -- views ----------------------------------------------------------------------------------
    @property
    def continue_matrix(self) -> Any:
        """``P_c`` as an ``(S*A, S)`` matrix (dense view or CSR): row ``s*A + a`` is P[s, a, ·] minus terminated mass."""
        return self._continue

    @property
    def P_continue(self) -> Any:
        """``P_c[s, a, s']`` in ``P``'s own form (dense ``(S, A, S)`` or sparse ``(S*A, S)``)."""
        if self.sparse:
            return self._continue
        return self._continue.reshape(self.n_states, self.n_actions, self.n_states)

    @property
    def nnz(self) -> int:
        """Number of non-zero transition probabilities."""
        return int(self.P.nnz) if self.sparse else int(np.count_nonzero(self.P))

    def to_dense(self) -> FiniteMDP:
        """The same MDP with dense arrays."""
        if not self.sparse:
            return self
        S, A = self.n_states, self.n_actions
        term = None if self.P_terminal is None else self.P_terminal.toarray().reshape(S, A, S)
        return FiniteMDP(self.P.toarray().reshape(S, A, S), self.R, term, self.initial, self.name)

    def to_sparse(self) -> FiniteMDP:
        """The same MDP with ``(S*A, S)`` CSR matrices."""
        if self.sparse:
            return self
        S, A = self.n_states, self.n_actions
        term = None if self.P_terminal is None else sp.csr_matrix(self.P_terminal.reshape(S * A, S))
        return FiniteMDP(sp.csr_matrix(self.P.reshape(S * A, S)), self.R, term, self.initial, self.name)

    # -- Bellman operators ----------------------------------------------------------------------
    def q_values(self, V: np.ndarray, gamma: float) -> np.ndarray:
        """``Q[s, a] = R[s, a] + γ Σ_s' P_c[s, a, s'] V[s']`` for every pair, in one product."""
        return self.R + gamma * (self._continue @ V).reshape(self.n_states, self.n_actions)

    def policy_matrix(self, policy: np.ndarray) -> tuple[Any, np.ndarray]:
        """``(P_π, R_π)`` for a policy: an ``(S, S)`` matrix with ``P_π[s, s'] = Σ_a π(a|s) P_c[s, a, s']`` and ``R_π[s]``.

        ``policy`` is either one action per state (shape ``(S,)``, ints) or probabilities ``π(a|s)`` (shape ``(S, A)``).
        """
        S, A = self.n_states, self.n_actions
        policy = np.asarray(policy)
        if policy.ndim == 1:
            rows = np.arange(S) * A + policy.astype(np.int64)
            return self._continue[rows], self.R[np.arange(S), policy]
        weights = sp.csr_matrix((policy.reshape(-1), np.arange(S * A), np.arange(0, S * A + 1, A)), shape=(S, S * A))
        if self.sparse:
            P_pi = (weights @ self._continue).tocsr()
        else:
            P_pi = np.einsum("sa,sat->st", policy, self._continue.reshape(S, A, S))
        return P_pi, (policy * self.R).sum(axis=1)

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_transition_table(cls, table: Any, n_states: int | None = None, n_actions: int | None = None,
                              sparse: bool | None = None, initial: np.ndarray | None = None,
                              name: str = "mdp") -> FiniteMDP:
        """From a toy-text table ``P[s][a] = [(prob, next_state, reward, terminated), ...]``.

        ``sparse=None`` stores the model dense when ``S*A*S`` ≤ :data:`DENSE_LIMIT`, sparse otherwise.
        """
        S = int(n_states if n_states is not None else len(table))
        A = int(n_actions if n_actions is not None else len(table[0]))
        rows, cols, probs, done = [], [], [], []
        R = np.zeros((S, A))
        for s in range(S):
            actions = table[s]
            for a in range(A):
                for prob, next_state, reward, terminated in actions[a]:
                    rows.append(s * A + a)
                    cols.append(int(next_state))
                    probs.append(float(prob))
                    done.append(bool(terminated))
                    R[s, a] += float(prob) * float(reward)
        rows_a, cols_a, probs_a = np.asarray(rows), np.asarray(cols), np.asarray(probs)
        done_a = np.asarray(done, dtype=bool)
        P = sp.csr_matrix((probs_a, (rows_a, cols_a)), shape=(S * A, S))
        P_term = sp.csr_matrix((probs_a[done_a], (rows_a[done_a], cols_a[done_a])), shape=(S * A, S)) if done_a.any() else None
        mdp = cls(P, R, P_term, initial, name)
        if sparse is False or (sparse is None and S * A * S <= DENSE_LIMIT):
            return mdp.to_dense()
        return mdp

    @classmethod
    def from_gym_env(cls, env: Any, sparse: bool | None = None) -> FiniteMDP:
        """From any env exposing its table as ``env.unwrapped.P`` (FrozenLake, CliffWalking, Taxi, the llmagentos/ grids).

        Raises UsageError when the env has no transition table.
        """
        inner = getattr(env, "unwrapped", env)
        table = getattr(inner, "P", None)
        name = getattr(getattr(env, "spec", None), "id", None) or type(inner).__name__
        if not isinstance(table, dict) or not table:
            raise UsageError(f"environment {name} exposes no transition table (env.unwrapped.P), so it has no finite "
                             "MDP to plan on; try FrozenLake-v1, FrozenLake8x8-v1, CliffWalking-v1, Taxi-v4 or an llmagentos/ grid world")
        n_states = getattr(getattr(inner, "observation_space", None), "n", None)
        n_actions = getattr(getattr(inner, "action_space", None), "n", None)
        initial = None
        for attribute in ("initial_state_distrib", "initial_distribution", "isd"):
            if getattr(inner, attribute, None) is not None:
                initial = np.asarray(getattr(inner, attribute), dtype=np.float64)
                break
        return cls.from_transition_table(table, n_states, n_actions, sparse=sparse, initial=initial, name=name)


def random_mdp(n_states: int, n_actions: int, successors: int = 10, seed: int = 0, sparse: bool = True,
               reward_scale: float = 1.0) -> FiniteMDP:
    """A random continuing MDP: each (s, a) moves to ``successors`` distinct random states with Dirichlet(1) probabilities.

    Rewards ``R[s, a]`` are uniform in ``[0, reward_scale)``. The same ``seed`` gives the same MDP.
    """
    if not 1 <= successors <= n_states:
        raise UsageError(f"successors must be in [1, n_states={n_states}], got {successors}")
    rng = np.random.Generator(np.random.PCG64(seed))
    rows_total = n_states * n_actions
    # distinct successors per row: the first k of a random permutation would be O(S) per row, so draw with
    # replacement and redraw the rare rows with a repeat
    cols = rng.integers(n_states, size=(rows_total, successors))
    sorted_cols = np.sort(cols, axis=1)
    repeats = np.flatnonzero((np.diff(sorted_cols, axis=1) == 0).any(axis=1))
    for row in repeats:
        cols[row] = rng.choice(n_states, size=successors, replace=False)
    probs = rng.exponential(size=(rows_total, successors))  # normalised exponentials are Dirichlet(1)
    probs /= probs.sum(axis=1, keepdims=True)
    indptr = np.arange(0, rows_total * successors + 1, successors)
    P = sp.csr_matrix((probs.reshape(-1), cols.reshape(-1), indptr), shape=(rows_total, n_states))
    P.sort_indices()
    R = rng.random((n_states, n_actions)) * reward_scale
    mdp = FiniteMDP(P, R, None, None, name=f"random-{n_states}x{n_actions}")
    return mdp if sparse else mdp.to_dense()
