"""Two classical classifiers in plain NumPy, for the baselines beside every run: a multinomial
logistic regression (L2, fitted with L-BFGS) and a kernel ridge classifier with an RBF kernel
(the least-squares support-vector machine).

Why not scikit-learn: importing it (scikit-learn, then SciPy's stats, optimize, sparse...) cost
2.7-6 s of every training's end on these busy 2-core machines, for fits that take a tenth of a
second. These are the same models, a few dozen lines each; `tests/test_seeds.py` checks them
against scikit-learn's on the same data.

Both standardise the features with the training set's mean and standard deviation first.
"""
from __future__ import annotations

import numpy as np


def standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets scaled by the training set's per-feature mean and standard deviation (a constant
    feature is only centred), as float64."""
    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    return (x_train - mean) / std, (x_test - mean) / std


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def logistic_regression(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, c: float = 0.1,
                        max_iter: int = 300, tol: float = 1e-4, memory: int = 10) -> np.ndarray:
    """Predicted classes of `x_test` by a multinomial logistic regression fitted on the training
    set: it minimises C * sum of cross-entropies + 1/2 |W|^2 (the intercept not penalised), the
    objective of scikit-learn's `LogisticRegression(C=c)`, with L-BFGS and a backtracking line
    search. Labels are integers; the result is in their values."""
    classes, y = np.unique(np.asarray(y_train), return_inverse=True)
    x, xt = standardise(x_train, x_test)
    n, d = x.shape
    k = len(classes)
    onehot = np.eye(k)[y]

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d * k].reshape(d, k), theta[d * k:]
        z = x @ w + b
        z_max = z.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(z - z_max).sum(axis=1, keepdims=True)) + z_max
        loss = c * float((log_sum[:, 0] - (z * onehot).sum(axis=1)).sum()) + 0.5 * float((w * w).sum())
        r = c * (np.exp(z - log_sum) - onehot)
        return loss, np.concatenate([(x.T @ r + w).ravel(), r.sum(axis=0)])

    theta = np.zeros(d * k + k)
    f, g = loss_grad(theta)
    g0 = np.abs(g).max() or 1.0
    s_list: list[np.ndarray] = []
    y_list: list[np.ndarray] = []
    for _ in range(max_iter):
        if np.abs(g).max() <= tol * g0:
            break
        q = g.copy()  # two-loop recursion: q becomes the inverse Hessian estimate times g
        alphas = []
        for s, yv in zip(reversed(s_list), reversed(y_list)):
            a = (s @ q) / (yv @ s)
            alphas.append(a)
            q -= a * yv
        if s_list:
            q *= (s_list[-1] @ y_list[-1]) / (y_list[-1] @ y_list[-1])
        else:
            q /= np.abs(g).max()
        for (s, yv), a in zip(zip(s_list, y_list), reversed(alphas)):
            q += s * (a - (yv @ q) / (yv @ s))
        step, direction = 1.0, -q
        slope = g @ direction
        if slope >= 0:  # not a descent direction: start again from the gradient
            s_list, y_list, direction = [], [], -g / (np.abs(g).max() or 1.0)
            slope = g @ direction
        while True:
            f_new, g_new = loss_grad(theta + step * direction)
            if f_new <= f + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s_new, y_new = step * direction, g_new - g
        theta, f, g = theta + s_new, f_new, g_new
        if y_new @ s_new > 1e-12:
            s_list.append(s_new)
            y_list.append(y_new)
            if len(s_list) > memory:
                s_list.pop(0)
                y_list.pop(0)
    w, b = theta[:d * k].reshape(d, k), theta[d * k:]
    return classes[np.argmax(xt @ w + b, axis=1)]


def kernel_ridge(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, c: float = 10.0) -> np.ndarray:
    """Predicted classes of `x_test` by a kernel ridge classifier (least-squares SVM): one-vs-rest
    targets of +1/-1, an RBF kernel with scikit-learn's `gamma="scale"` (1 / (features * variance)),
    ridge 1/C, a free intercept per class; the class of the largest score wins."""
    classes, y = np.unique(np.asarray(y_train), return_inverse=True)
    x, xt = standardise(x_train, x_test)
    gamma = 1.0 / (x.shape[1] * (x.var() or 1.0))
    sq = (x * x).sum(axis=1)

    def kernel(a: np.ndarray, sq_a: np.ndarray) -> np.ndarray:
        return np.exp(-gamma * np.maximum(sq_a[:, None] + sq[None, :] - 2.0 * a @ x.T, 0.0))

    k_train = kernel(x, sq)
    targets = np.where(np.eye(len(classes))[y] > 0, 1.0, -1.0)
    bias = targets.mean(axis=0)
    alpha = np.linalg.solve(k_train + np.eye(len(x)) / c, targets - bias)
    scores = kernel(xt, (xt * xt).sum(axis=1)) @ alpha + bias
    return classes[np.argmax(scores, axis=1)]
