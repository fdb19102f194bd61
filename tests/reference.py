"""Plain-Python/NumPy reference versions of the kernels, written from the published algorithms."""

import math

import numpy as np

M64 = (1 << 64) - 1


def splitmix64(state):
    """Return (new_state, output) for a splitmix64 state (Steele, Lea and Flood, 2014)."""
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


class Xoshiro256ss:
    """xoshiro256** with Python integers (Blackman and Vigna)."""

    def __init__(self, s):
        self.s = [int(v) & M64 for v in s]

    @classmethod
    def from_seed(cls, seed):
        state, words = seed, []
        for _ in range(4):
            state, out = splitmix64(state)
            words.append(out)
        return cls(words)

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64  # noqa: E731
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def signs(self, n):
        out = []
        while len(out) < n:
            bits = self.next()
            out.extend(1.0 if (bits >> j) & 1 else -1.0 for j in range(min(64, n - len(out))))
        return np.array(out)


class ReferenceSpsa:
    """SPSA as in Spall (1998), on the unit cube, with the same config semantics as ``arqon.Tuner``."""

    def __init__(self, config):
        p = config.params
        s = config.spsa
        self.log = np.array([q.scale == "log" for q in p])
        self.integer = np.array([q.integer for q in p])
        self.lo = np.array([math.log(q.min) if q.scale == "log" else q.min for q in p])
        self.hi = np.array([math.log(q.max) if q.scale == "log" else q.max for q in p])
        self.vmin = np.array([math.ceil(q.min) if q.integer else q.min for q in p])
        self.vmax = np.array([math.floor(q.max) if q.integer else q.max for q in p])
        self.span = self.hi - self.lo
        init = [0.5 if q.init is None else ((math.log(q.init) if q.scale == "log" else q.init) - lo) / (hi - lo)
                for q, lo, hi in zip(p, self.lo, self.hi)]
        self.theta = np.array(init)
        self.rng = Xoshiro256ss.from_seed(config.seed)
        self.sense = 1.0 if config.direction == "minimize" else -1.0
        self.constant = s.gains == "constant"
        self.a, self.c, self.c_max, self.alpha, self.gamma = s.a or 0.0, s.c, s.c, s.alpha, s.gamma
        self.auto = s.a is None
        self.n_cal, self.cal = (s.calibration if self.auto else 0), []
        self.A = s.stability if s.stability is not None else (
            0.1 * config.budget / (2 * s.average) if config.budget else 10.0)
        self.initial_step, self.max_step, self.n_avg = s.initial_step, s.max_step, s.average
        self.budget = config.budget or 0
        self.k = 0
        self.told = 0
        self.grads = []
        self.adaptive = s.perturbation == "adaptive"
        self.means, self.log_noise, self.curvature = [], 0.0, 0.0
        self.blocking = s.blocking if s.blocking is not None else not self.integer.any()
        self.scale, self.blocked = 1.0, 0
        self.values, self.log_jitter, self.judging, self.group = [], 0.0, "still", []
        self.prev = self.theta.copy()

    def reopen(self):
        """What a re-opened exploration resets: k, and blocking's values and gain cut."""
        self.k, self.values, self.scale, self.judging = 0, [], 1.0, "still"

    def user(self, u):
        v = self.lo + u * (self.hi - self.lo)
        v = np.where(self.log, np.exp(v), v)
        v = np.where(self.integer, np.floor(v + 0.5), v)
        return np.clip(v, self.vmin, self.vmax)

    def pair(self):
        """The two proposals of the next pair (draws its perturbation)."""
        if self.adaptive:  # alternately c(1 + 1/4) and c(1 - 1/4)
            self.ck = self.c * (1.25 if len(self.means) % 2 == 0 else 0.75)
        else:
            self.ck = self.c if self.constant else self.c / (self.k + 1.0) ** self.gamma
        # integer parameters: at least 0.6 of an integer step, measured where theta is on a log scale
        theta_value = np.maximum(np.exp(self.lo + self.theta * self.span), self.vmin)
        steps = np.where(self.log, np.log1p(1.0 / np.where(self.log, theta_value, 1.0)), 1.0) / self.span
        floor = np.where(self.integer, 0.6 * steps, 0.0)
        self.perturbation = self.rng.signs(len(self.theta)) * np.maximum(self.ck, floor)
        plus = self.user(np.clip(self.theta + self.perturbation, 0, 1))
        minus = self.user(np.clip(self.theta - self.perturbation, 0, 1))
        return plus, minus

    def update(self, y_plus, y_minus):
        y_plus, y_minus = self.sense * y_plus, self.sense * y_minus
        if self.adaptive:
            self.adapt(0.5 * (y_plus + y_minus))
        half_difference = (y_plus - y_minus) / 2
        if not np.isfinite(half_difference / self.ck):
            half_difference = 0.0
        if self.integer.any():
            self.grads.append(half_difference / self.perturbation)
        else:  # the kernel's form when every perturbation is +-c_k (1/delta == delta/c_k^2)
            self.grads.append(half_difference / (self.ck * self.ck) * self.perturbation)
        self.group.append(0.5 * (y_plus + y_minus))
        if len(self.grads) < self.n_avg:
            return
        g = np.sum(self.grads, axis=0) / self.n_avg
        self.grads = []
        value = math.fsum(self.group) / self.n_avg
        self.group = []
        if self.blocking and self.blocks(value):
            return
        size = np.mean(np.abs(g))
        if len(self.cal) < self.n_cal and size > 0:
            self.cal.append(size)
            decay = 1.0 if self.constant else (self.A + 1.0) ** self.alpha
            self.a = self.initial_step * decay / max(self.cal)
        a_k = self.gain()
        self.theta = np.clip(self.theta - np.clip(a_k * g, -self.max_step, self.max_step), 0, 1)
        self.k += 1
        if self.blocking and a_k > 0:
            self.judging = "moved"

    def blocks(self, value):
        """Spall's blocking as documented: a move is taken back (theta to the point before it, the gain halved, to
        1/1024 at least) when the mean pair value measured after it exceeds both the last value kept v1 and the trend
        2 v1 - v2 by more than 3 deviations of a difference, sqrt(E[r^2] / 3), E[log r^2] = the running mean (weight
        max(0.1, 1/m) for the m-th) of the log squared second differences r of the values kept, + 1.2704; before the
        third value, by anything. A confirmed move: gain x 1.05 up to 1. The repeat after a block is kept; if it is as
        much worse, the halving is undone."""
        n = len(self.values)
        reference = self.values[-1] if n else 0.0
        if n > 1:
            reference = max(reference, 2 * self.values[-1] - self.values[-2])
        tolerance = 3 * math.sqrt(math.exp(self.log_jitter + 1.2703628454614782) / 3) if n > 2 else 0.0
        worse = n > 0 and value > reference + tolerance
        if self.judging == "moved":
            self.judging = "repeat"
            if worse:
                self.theta = self.prev.copy()
                self.scale = max(self.scale / 2, 1 / 1024)
                self.blocked += 1
                return True
            self.scale = min(self.scale * 1.05, 1.0)
        elif self.judging == "repeat" and worse:
            self.scale = min(self.scale * 2, 1.0)
        self.judging = "still"
        self.values.append(value)
        if len(self.values) > 2:
            r = self.values[-1] - 2 * self.values[-2] + self.values[-3]
            m = len(self.values) - 2
            sample = math.log(max(r * r, 1e-300))
            if m > 1:  # one sample lowers the running mean by 1 at most (an exact repeat would send it to -690)
                sample = max(sample, self.log_jitter - 10)
            self.log_jitter += max(0.1, 1 / m) * (sample - self.log_jitter)
        self.prev = self.theta.copy()
        return False

    def gain(self):
        """a_k, applied to the mean of an update's gradient estimates."""
        a = self.a * self.scale if self.blocking else self.a
        return a if self.constant else a / (self.k + 1.0 + self.A) ** self.alpha

    def adapt(self, mean):
        """The adaptive perturbation as documented: the second difference of pair means, r = +-c^2 tr(H) + noise
        (the sign that of the newest pair's wobble), gives running estimates of tr(H) (samples clipped to 3 noise
        deviations) and of E[log r^2] (so 3 sigma^2 = exp(that + 1.2704)); c moves a tenth of the way, in log terms,
        toward (d a_k sigma^2 / (4 tr H))^(1/4), by 5% at most, within [1e-4, the configured c], after 50 samples."""
        self.means.append(mean)
        n = len(self.means) - 1
        if n < 2:
            return
        sign = 1.0 if n % 2 == 0 else -1.0
        unit = self.c * self.c  # 4 * wobble * c^2 with wobble 1/4
        r = self.means[-1] - 2 * self.means[-2] + self.means[-3] - sign * unit * self.curvature
        rate = max(0.02, 1 / (n - 1))
        self.log_noise += rate * (math.log(max(r * r, 1e-300)) - self.log_noise)
        var3 = math.exp(self.log_noise + 1.2703628454614782)
        self.curvature += rate * sign * float(np.clip(r, -3 * math.sqrt(var3), 3 * math.sqrt(var3))) / unit
        a_k = self.gain() / self.n_avg  # each estimate's share of a move
        if n - 1 > 50 and self.curvature > 0 and a_k > 0:
            target = (len(self.theta) * a_k * var3 / 3 / (4 * self.curvature)) ** 0.25
            self.c = float(np.clip(self.c * float(np.clip((target / self.c) ** 0.1, 0.95, 1.05)), 1e-4, self.c_max))

    def recommend(self):
        return self.user(self.theta)


class ReferenceP2:
    """The P-square estimator as published: Jain and Chlamtac (1985) for one quantile, extended by Raatikainen (1987) to
    several sharing their markers (the quantiles, a marker halfway between neighbours, the extremes). Desired positions
    are accumulated by their increments; markers are adjusted in order with the piecewise-parabolic formula or,
    failing it, linearly."""

    def __init__(self, *ps):
        self.ps = sorted(set(ps))
        self.dn = [0.0]
        for lo, p in zip([0.0, *self.ps], self.ps):
            self.dn += [(lo + p) / 2, p]
        self.dn += [(self.ps[-1] + 1) / 2, 1.0]
        self.m = len(self.dn)
        self.q, self.n = [], list(range(1, self.m + 1))
        self.want = [1 + (self.m - 1) * d for d in self.dn]

    def add(self, x):
        q, n, m = self.q, self.n, self.m
        if len(q) < m:
            q.append(x)
            q.sort()
            return
        if x < q[0]:
            q[0], k = x, 0
        elif x >= q[m - 1]:
            q[m - 1], k = x, m - 2
        else:
            k = next(i for i in range(m - 1) if q[i] <= x < q[i + 1])
        for i in range(k + 1, m):
            n[i] += 1
        for i in range(m):
            self.want[i] += self.dn[i]
        for i in range(1, m - 1):
            d = self.want[i] - n[i]
            if (d >= 1 and n[i + 1] - n[i] > 1) or (d <= -1 and n[i - 1] - n[i] < -1):
                s = 1 if d > 0 else -1
                parabolic = q[i] + s / (n[i + 1] - n[i - 1]) * (
                    (n[i] - n[i - 1] + s) * (q[i + 1] - q[i]) / (n[i + 1] - n[i])
                    + (n[i + 1] - n[i] - s) * (q[i] - q[i - 1]) / (n[i] - n[i - 1]))
                if q[i - 1] < parabolic < q[i + 1]:
                    q[i] = parabolic
                else:
                    q[i] = q[i] + s * (q[i + s] - q[i]) / (n[i + s] - n[i])
                n[i] += s

    def estimate(self, p=None):
        p = self.ps[0] if p is None else p
        if len(self.q) < self.m:  # interpolated between the sorted samples, as the kernel does
            return float(np.quantile(self.q, p)) if self.q else math.nan
        return self.q[2 * self.ps.index(p) + 2]


def reference_cusum(values, warmup, allowance, threshold, page_hinkley=False):
    """Indices at which a two-sided CUSUM (or Page-Hinkley: against the running mean) fires, restarting its warm-up
    after each detection; level and spread from the warm-up's mean and sample standard deviation."""
    fired, start = [], 0
    while start < len(values):
        block = values[start:]
        if len(block) <= warmup:
            break
        mu, sigma = float(np.mean(block[:warmup])), float(np.std(block[:warmup], ddof=1))
        up = down = 0.0
        total = float(np.sum(block[:warmup]))
        for i in range(warmup, len(block)):
            total += block[i]
            ref = total / (i + 1) if page_hinkley else mu
            z = (block[i] - ref) / sigma
            up, down = max(0.0, up + z - allowance), max(0.0, down - z - allowance)
            if up > threshold or down > threshold:
                fired.append(start + i)
                start += i + 1
                break
        else:
            break
    return fired


def reference_cma_update(m, sigma, C, ps, pc, ys, zs, values, gen, lam):
    """One generation of the (mu/mu_w, lambda) CMA-ES update of Hansen's tutorial (2016), in plain NumPy with the full
    covariance: returns the new (m, sigma, C, ps, pc). ``gen`` counts generations before this one."""
    d = len(m)
    mu = lam // 2
    w = np.log((lam + 1) / 2) - np.log(np.arange(1, mu + 1))
    w /= w.sum()
    mueff = 1 / np.sum(w ** 2)
    cc = (4 + mueff / d) / (d + 4 + 2 * mueff / d)
    cs = (mueff + 2) / (d + mueff + 5)
    c1 = 2 / ((d + 1.3) ** 2 + mueff)
    cmu = min(1 - c1, 2 * (mueff - 2 + 1 / mueff) / ((d + 2) ** 2 + mueff))
    damps = 1 + 2 * max(0, math.sqrt((mueff - 1) / (d + 1)) - 1) + cs
    chi_n = math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d * d))
    best = np.argsort(values, kind="stable")[:mu]
    yw, zw = w @ ys[best], w @ zs[best]
    m = np.clip(m + sigma * yw, 0, 1)
    ps = (1 - cs) * ps + math.sqrt(cs * (2 - cs) * mueff) * zw
    h_sigma = np.linalg.norm(ps) / math.sqrt(1 - (1 - cs) ** (2 * (gen + 1))) < (1.4 + 2 / (d + 1)) * chi_n
    pc = (1 - cc) * pc + h_sigma * math.sqrt(cc * (2 - cc) * mueff) * yw
    C = ((1 - c1 - cmu + (1 - h_sigma) * c1 * cc * (2 - cc)) * C + c1 * np.outer(pc, pc)
         + cmu * (ys[best].T * w) @ ys[best])
    sigma = sigma * math.exp(min(1.0, cs / damps * (np.linalg.norm(ps) / chi_n - 1)))
    return m, min(sigma, 1.0), C, ps, pc


def reference_es_update(theta, sigma, eps, values, lr_sigma):
    """Separable NES with one step size and rank utilities: returns the new (theta, sigma)."""
    n, d = eps.shape
    order = np.argsort(values, kind="stable")
    raw = np.maximum(0, np.log(n / 2 + 1) - np.log(np.arange(1, n + 1)))
    u = raw / raw.sum() - 1 / n
    theta = np.clip(theta + sigma * u @ eps[order], 0, 1)
    sigma = sigma * math.exp(0.5 * lr_sigma * np.sum(u * (np.sum(eps[order] ** 2, axis=1) / d - 1)))
    return theta, min(sigma, 0.5)


class ReferencePbt:
    """PBT-lite as documented (kernels/pbt.py), on the unit cube, drawing from the same xoshiro256** stream: round 0
    puts member 0 at the start and the others uniform in the cube; each round every member is measured once; a score
    is the value on first measurement, then ``score_decay`` * score + (1 - ``score_decay``) * value; members rank by
    score (ties in member order, never measured last); theta is the best; the worst ``mu`` (at most half of those
    measured) in turn copy a donor drawn uniformly from the best ``mu``, point and score, then move by a uniform step
    in [-explore, explore] per coordinate, clipped into the cube."""

    def __init__(self, config):
        self.space = ReferenceSpsa(config)  # for the user-unit mapping and the start
        p = config.pbt
        self.n, self.mu = p.pool, max(1, round(p.replace * p.pool))
        self.explore, self.keep = p.explore, p.score_decay
        self.sense = 1.0 if config.direction == "minimize" else -1.0
        self.rng = Xoshiro256ss.from_seed(config.seed)
        self.theta = self.space.theta.copy()
        self.points, self.scores = None, np.full(self.n, np.nan)

    def uniform(self):
        return (self.rng.next() >> 11) * (1.0 / 9007199254740992.0)

    def round(self):
        """The proposals of the next round, in user units."""
        if self.points is None:
            self.points = np.array([self.theta.copy() if j == 0 else [self.uniform() for _ in self.theta]
                                    for j in range(self.n)])
        return [self.space.user(u) for u in self.points]

    def update(self, values):
        for j, v in enumerate(values):
            y = self.sense * v
            self.scores[j] = y if math.isnan(self.scores[j]) else self.keep * self.scores[j] + (1 - self.keep) * y
        measured = [j for j in range(self.n) if not math.isnan(self.scores[j])]
        order = sorted(measured, key=lambda j: self.scores[j])  # sorted is stable: ties stay in member order
        if not order:
            return
        self.theta = self.points[order[0]].copy()
        mu = min(self.mu, len(order) // 2)
        for r in range(mu):
            loser = order[len(order) - 1 - r]
            donor = order[min(int(self.uniform() * mu), mu - 1)]
            step = np.array([self.explore * (2 * self.uniform() - 1) for _ in self.theta])
            self.points[loser] = np.clip(self.points[donor] + step, 0, 1)
            self.scores[loser] = self.scores[donor]

    def recommend(self):
        return self.space.user(self.theta)
