"""Localisation on the store map: a particle filter of the AMCL family, vectorised with numpy.

Pure core, no rclpy. The pieces are those of Thrun, Burgard & Fox, *Probabilistic Robotics*
(ch. 5, 6, 8) as Nav2's AMCL uses them:

- `LikelihoodField`: for every cell the distance to the nearest occupied cell of the map
  (Euclidean distance transform) and the log-likelihood of a beam ending there,
  log(z_hit * N(d; 0, sigma_hit) + z_rand / range_max) (the "likelihood field" sensor model);
- `sample_motion_odometry`: the odometry motion model (rotation, translation, rotation, with noise
  alpha1..alpha4), applied to all particles at once;
- `ParticleFilter`: predict on odometry, weigh by the scan (a subset of `max_beams` beams), resample
  (low-variance) when the effective sample size drops below half, with KLD-sampling choosing how
  many particles to keep (Fox 2003) and augmented-MCL random particles when the scan stops
  matching (short/long averages of the measurement likelihood). Global relocalisation spreads
  particles uniformly over the free floor. The estimate is the weighted mean of the cluster
  around the best particle, with its covariance. `score` is the share of beams that end within
  `match_tolerance_m` of a mapped obstacle at the estimate: below `lost_score` for
  `lost_after_updates` updates, the filter is *lost*.
- No information is not contrary evidence: a scan with fewer than `min_beams` returns within range
  (a lidar shorter than the hall: every beam +inf) neither weighs the particles nor counts towards
  *lost*; the pose goes on with odometry, its covariance growing, and the estimate says
  `degraded`.
- Global relocalisation keeps every place the scans match (`Hypothesis`: the modes of the
  posterior, followed by odometry and refined on each scan) and accepts a pose only when no other
  place far away matches about as well; in a store with two identical aisles it stays *not sure*
  (`Estimate.ambiguous` lists the places) instead of settling on one by chance. Before a pose is
  accepted the whole map is searched once more for a look-alike place (a fresh uniform sample,
  its best far-away poses refined), so a mode the particles lost early is not forgotten.
- `OdomHistory`: a short odometry history, interpolated to each scan's own stamp (the scan is
  used where the robot was when it was taken, not where the latest odometry says it is now);
  stamps off the history by more than its window are refused with the reason.

Poses are (x, y, theta) in metres and radians, in the map frame (REP-105).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from retail_navigation.maps import OCCUPIED_AT, StoreMap

Pose = tuple[float, float, float]


def wrap(a):
    """Angle(s) in [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


@dataclass
class AmclConfig:
    min_particles: int = 500
    max_particles: int = 5000
    global_particles: int = 30000        # particles spread by a global relocalisation
    alpha1: float = 0.1                  # rotation noise from rotation
    alpha2: float = 0.05                 # rotation noise from translation
    alpha3: float = 0.1                  # translation noise from translation
    alpha4: float = 0.05                 # translation noise from rotation
    sigma_hit: float = 0.08              # m
    z_hit: float = 0.9
    z_rand: float = 0.1
    max_beams: int = 60
    beam_weight: float = 0.5             # exponent on each beam's likelihood (beams are not independent)
    global_beam_weight: float = 0.1      # ... while relocalising globally: many hypotheses survive a few scans
    global_min_updates: int = 8          # updates on the whole map before trusting the best hypothesis ...
    global_accept_score: float = 0.85    # ... and only when it matches the scan this well
    global_restart_updates: int = 30     # no hypothesis accepted after this many updates: spread again
    max_dist: float = 2.0                # m: the likelihood field looks this far
    update_min_d: float = 0.05           # m travelled before a filter update
    update_min_a: float = 0.05           # rad turned before a filter update
    kld_err: float = 0.05
    kld_z: float = 2.33                  # upper 0.99 quantile of the standard normal
    kld_bin_xy: float = 0.2
    kld_bin_theta: float = math.radians(10)
    recovery_alpha_slow: float = 0.0      # augmented MCL random particles; 0 = off (Nav2's default: they
    recovery_alpha_fast: float = 0.0      # make a filter in a symmetric store jump; lost -> global instead)
    match_tolerance_m: float = 0.15
    lost_score: float = 0.5
    lost_after_updates: int = 10
    cluster_radius_m: float = 0.5
    initial_std_xy: float = 0.2
    initial_std_theta: float = 0.2
    min_beams: int = 10                  # fewer returns within range: no information (odometry only)
    mode_separation_m: float = 1.5       # places this far apart are different hypotheses
    mode_min_share: float = 0.05         # a posterior cluster with this share of the weight is a hypothesis
    ambiguity_margin: float = 0.05       # another place matching within this of the best: not sure
    max_hypotheses: int = 6


class LikelihoodField:
    """The map, seen by a beam end point: distance to the nearest obstacle and its log-likelihood."""

    def __init__(self, store_map: StoreMap, config: AmclConfig) -> None:
        self.map = store_map
        occupied = store_map.grid >= OCCUPIED_AT
        res = store_map.resolution
        if occupied.any():
            distance = ndimage.distance_transform_edt(~occupied) * res
        else:
            distance = np.full(occupied.shape, config.max_dist)
        self.distance = np.minimum(distance, config.max_dist).astype(np.float32)
        self.free = store_map.free_mask()
        range_max = 12.0
        self.floor = config.z_rand / range_max
        sigma = config.sigma_hit
        self.log_p = np.log(config.z_hit * np.exp(-self.distance.astype(np.float64) ** 2 / (2 * sigma * sigma))
                            + self.floor).astype(np.float32)
        self.outside_log_p = float(np.log(config.z_hit * math.exp(-config.max_dist ** 2 / (2 * sigma * sigma))
                                          + self.floor))
        ox, oy, yaw = store_map.origin
        self._origin = (ox, oy)
        self._c, self._s = math.cos(yaw), math.sin(yaw)

    def cells(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, col, inside) of map points (any shape)."""
        res = self.map.resolution
        dx, dy = x - self._origin[0], y - self._origin[1]
        i = np.floor((self._c * dx + self._s * dy) / res).astype(np.int64)
        j = np.floor((-self._s * dx + self._c * dy) / res).astype(np.int64)
        h, w = self.distance.shape
        inside = (i >= 0) & (i < w) & (j >= 0) & (j < h)
        return np.where(inside, j, 0), np.where(inside, i, 0), inside

    def log_likelihood(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        j, i, inside = self.cells(x, y)
        return np.where(inside, self.log_p[j, i], self.outside_log_p)

    def distance_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        j, i, inside = self.cells(x, y)
        return np.where(inside, self.distance[j, i], np.inf)

    def free_points(self) -> np.ndarray:
        """Centres of the known free cells, float[k, 2] (for uniform sampling)."""
        jj, ii = np.nonzero(self.free)
        x, y = self.map.cell_to_world(ii.astype(np.float64), jj.astype(np.float64))
        return np.stack([np.asarray(x), np.asarray(y)], axis=1)


def sample_motion_odometry(particles: np.ndarray, odom0: Pose, odom1: Pose, config: AmclConfig,
                           rng: np.random.Generator) -> np.ndarray:
    """Move every particle (float[n, 3]) by the odometry step odom0 -> odom1 with sampled noise
    (Probabilistic Robotics, table 5.6; backwards motion is a translation with rot1 flipped)."""
    dx, dy = odom1[0] - odom0[0], odom1[1] - odom0[1]
    trans = math.hypot(dx, dy)
    rot1 = float(wrap(math.atan2(dy, dx) - odom0[2])) if trans > 0.01 else 0.0
    rot2 = float(wrap(odom1[2] - odom0[2] - rot1))
    # noise does not grow because a backwards step looks like a half-turn
    rot1_n = min(abs(rot1), abs(float(wrap(rot1 - math.pi))))
    rot2_n = min(abs(rot2), abs(float(wrap(rot2 - math.pi))))
    c = config
    n = len(particles)
    sd_rot1 = math.sqrt(c.alpha1 * rot1_n ** 2 + c.alpha2 * trans ** 2) + 1e-3
    sd_trans = math.sqrt(c.alpha3 * trans ** 2 + c.alpha4 * (rot1_n ** 2 + rot2_n ** 2)) + 1e-3
    sd_rot2 = math.sqrt(c.alpha1 * rot2_n ** 2 + c.alpha2 * trans ** 2) + 1e-3
    r1 = rot1 - rng.normal(0.0, sd_rot1, n)
    t = trans - rng.normal(0.0, sd_trans, n)
    r2 = rot2 - rng.normal(0.0, sd_rot2, n)
    out = particles.copy()
    heading = particles[:, 2] + r1
    out[:, 0] += t * np.cos(heading)
    out[:, 1] += t * np.sin(heading)
    out[:, 2] = wrap(heading + r2)
    return out


def low_variance_indices(weights: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Systematic resampling: `count` indices drawn in proportion to the normalised weights."""
    positions = (rng.random() + np.arange(count)) / count
    cumulative = np.cumsum(weights)
    cumulative[-1] = 1.0
    return np.searchsorted(cumulative, positions, side='left')


def kld_count(k: np.ndarray | int, err: float, z: float) -> np.ndarray:
    """Particles needed for k occupied histogram bins (Fox 2003, KLD-sampling)."""
    k = np.maximum(np.asarray(k, dtype=np.float64), 2.0)
    a = 2.0 / (9.0 * (k - 1.0))
    return np.ceil((k - 1.0) / (2.0 * err) * (1.0 - a + np.sqrt(a) * z) ** 3)


@dataclass
class Estimate:
    pose: Pose
    covariance: np.ndarray            # 3x3 of x, y, theta
    score: float                      # share of beams that match the map at the pose (0..1)
    particles: int
    lost: bool
    updated: bool = False             # the filter ran an update on this scan
    notes: list[str] = field(default_factory=list)
    degraded: bool = False            # no laser information in this update: odometry only
    ambiguous: list[Pose] = field(default_factory=list)   # other places matching as well (not sure)


@dataclass
class Hypothesis:
    """A place the scans match during a global relocalisation."""

    pose: Pose
    score: float                      # running scan match at the place
    misses: int = 0                   # updates in a row it matched clearly worse than accepted


def posterior_modes(particles: np.ndarray, weights: np.ndarray, radius: float, min_share: float,
                    max_modes: int = 6) -> list[tuple[Pose, float]]:
    """Clusters of the weighted particles (greedy around the heaviest particle left, `radius` in
    x/y), each (weighted mean pose, share of the weight), heaviest first, down to `min_share`."""
    left = np.ones(len(particles), dtype=bool)
    modes: list[tuple[Pose, float]] = []
    total = float(weights.sum()) or 1.0
    while len(modes) < max_modes and left.any():
        idx = np.nonzero(left)[0]
        best = particles[idx[int(np.argmax(weights[idx]))]]
        near = left & (np.hypot(particles[:, 0] - best[0], particles[:, 1] - best[1]) < radius)
        share = float(weights[near].sum()) / total
        left &= ~near
        if share < min_share:
            if float(weights[left].sum()) / total < min_share:
                break
            continue
        w = weights[near] / max(float(weights[near].sum()), 1e-300)
        pc = particles[near]
        theta = math.atan2(float(w @ np.sin(pc[:, 2])), float(w @ np.cos(pc[:, 2])))
        modes.append(((float(w @ pc[:, 0]), float(w @ pc[:, 1]), theta), share))
    return modes


class OdomHistory:
    """The last `keep_s` of odometry poses by stamp; `at(stamp)` interpolates the pose at a scan's
    stamp (interpolated, never extrapolated). Verdicts: 'ok'; 'wait' (the stamp is after the newest
    odometry, by less than `window_s`: it may still come);
    'ahead' / 'behind' (off the history by more than `window_s`: refused); 'none' (no odometry yet)."""

    def __init__(self, keep_s: float = 2.0, window_s: float = 0.5, edge_s: float = 0.05) -> None:
        self.keep_s, self.window_s, self.edge_s = keep_s, window_s, edge_s
        self.stamps: list[float] = []
        self.poses: list[Pose] = []

    def add(self, stamp: float, pose: Pose) -> str:
        """'' or why the message was not kept (non-finite, out of order)."""
        if not (math.isfinite(stamp) and all(math.isfinite(v) for v in pose)):
            return 'odometry with non-finite values'
        if self.stamps and stamp <= self.stamps[-1]:
            if stamp < self.stamps[-1] - self.keep_s:      # the clock jumped back: start again
                self.stamps.clear()
                self.poses.clear()
            else:
                return 'odometry stamped before the previous message'
        self.stamps.append(stamp)
        self.poses.append(pose)
        cut = bisect.bisect_left(self.stamps, stamp - self.keep_s)
        if cut:
            del self.stamps[:cut], self.poses[:cut]
        return ''

    def at(self, stamp: float) -> tuple[Pose | None, str, float]:
        """(pose, verdict, offset [s] of the stamp beyond the history)."""
        if not self.stamps:
            return None, 'none', math.inf
        first, last = self.stamps[0], self.stamps[-1]
        if stamp > last:                         # never extrapolated: bunched stamps would make it jump
            offset = stamp - last
            return None, ('wait' if offset <= self.window_s else 'ahead'), offset
        if stamp < first:
            offset = first - stamp
            if offset <= self.edge_s:
                return self.poses[0], 'ok', offset
            return None, 'behind', last - stamp
        k = max(1, bisect.bisect_left(self.stamps, stamp))
        return self._between(k, stamp), 'ok', 0.0

    def _between(self, k: int, stamp: float) -> Pose:
        t0, t1 = self.stamps[k - 1], self.stamps[k]
        a, b = self.poses[k - 1], self.poses[k]
        f = (stamp - t0) / (t1 - t0) if t1 > t0 else 0.0
        d = relative(a, b)
        return compose(a, (d[0] * f, d[1] * f, d[2] * f))


class ParticleFilter:
    """AMCL-style localisation on one store map. Feed `predict(odom)` and `update(scan)`, or both
    at once with `step(odom_pose, ranges, angles)`."""

    def __init__(self, store_map: StoreMap, config: AmclConfig | None = None, *, laser_mount: Pose = (0.0, 0.0, 0.0),
                 range_min: float = 0.15, range_max: float = 12.0, seed: int | None = None) -> None:
        self.config = config or AmclConfig()
        self.field = LikelihoodField(store_map, self.config)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.resampled = False                  # the last update ended with a resample (uniform weights)
        self.mount = laser_mount
        self.range_min, self.range_max = range_min, range_max
        self.particles = np.zeros((0, 3))
        self.weights = np.zeros(0)
        self._odom: Pose | None = None           # odometry pose of the last filter update
        self._w_slow = self._w_fast = 0.0
        self._bad_updates = 0
        self._global_updates = 0
        self.global_mode = False
        self.estimate: Estimate | None = None
        self._free_points: np.ndarray | None = None
        self.hypotheses: list[Hypothesis] = []
        self._delta: Pose = (0.0, 0.0, 0.0)      # odometry step of the current update
        self._beams_now: tuple[np.ndarray, np.ndarray] | None = None

    # --- initialisation -----------------------------------------------------------------------
    def initialise(self, pose: Pose, std_xy: float | None = None, std_theta: float | None = None,
                   count: int | None = None) -> None:
        """Particles around `pose` (Gaussian), e.g. the dock or RViz's 2D Pose Estimate."""
        c = self.config
        n = count or c.max_particles
        sx = c.initial_std_xy if std_xy is None else std_xy
        st = c.initial_std_theta if std_theta is None else std_theta
        p = np.empty((n, 3))
        p[:, 0] = self.rng.normal(pose[0], sx, n)
        p[:, 1] = self.rng.normal(pose[1], sx, n)
        p[:, 2] = wrap(self.rng.normal(pose[2], st, n))
        self._set(p)
        self.global_mode = False
        self.hypotheses = []
        self._odom = None                        # the next scan's odometry is the reference for `pose`
        self._bad_updates = 0
        self.estimate = Estimate(tuple(float(v) for v in pose), np.diag([sx * sx, sx * sx, st * st]), 1.0, n, False)

    def relocalise_globally(self, keep_hypotheses: bool = False) -> None:
        """Forget the pose: particles uniformly over the known free floor, any heading."""
        n = self.config.global_particles
        p = self._uniform(n)
        self._set(p)
        self.global_mode = True
        if not keep_hypotheses:
            self.hypotheses = []
        self._global_updates = 0
        self._bad_updates = 0
        self._w_slow = self._w_fast = 0.0

    def _uniform(self, n: int) -> np.ndarray:
        if self._free_points is None:
            self._free_points = self.field.free_points()
        points = self._free_points
        if not len(points):
            raise ValueError('the map has no free floor to localise on')
        res = self.field.map.resolution
        pick = points[self.rng.integers(0, len(points), n)]
        p = np.empty((n, 3))
        p[:, :2] = pick + self.rng.uniform(-res / 2, res / 2, (n, 2))
        p[:, 2] = self.rng.uniform(-math.pi, math.pi, n)
        return p

    def _set(self, particles: np.ndarray) -> None:
        self.particles = particles
        self.weights = np.full(len(particles), 1.0 / len(particles))

    @property
    def initialised(self) -> bool:
        return len(self.particles) > 0

    # --- the filter ---------------------------------------------------------------------------
    def step(self, odom: Pose, ranges: np.ndarray, angles: np.ndarray, force: bool = False,
             key: int | None = None) -> Estimate | None:
        """One scan with the odometry pose at its time. Updates only after `update_min_d` /
        `update_min_a` of motion (or `force`, or while relocalising globally); returns the
        estimate (`updated` tells whether the filter ran).

        With a `seed` and a `key` (the scan's stamp in ns), the update draws its noise from
        (seed, key) alone: the same particles, odometry and scan give the same result however many
        draws came before (a replay of a recording re-runs each update exactly)."""
        self.resampled = False
        if not self.initialised:
            return None
        c = self.config
        if self._odom is None:
            self._odom = odom
            force = True
        moved = math.hypot(odom[0] - self._odom[0], odom[1] - self._odom[1])
        turned = abs(float(wrap(odom[2] - self._odom[2])))
        if not (force or self.global_mode or moved >= c.update_min_d or turned >= c.update_min_a):
            return self._shifted_estimate(odom)
        if self.seed is not None and key is not None:
            self.rng = np.random.default_rng([self.seed, key])
        self.particles = sample_motion_odometry(self.particles, self._odom, odom, c, self.rng)
        delta = self._delta = relative(self._odom, odom)
        if self.hypotheses:
            for h in self.hypotheses:
                h.pose = compose(h.pose, delta)
        self._odom = odom
        self._update(np.asarray(ranges, dtype=np.float64), np.asarray(angles, dtype=np.float64))
        self.estimate.updated = True
        return self.estimate

    def _shifted_estimate(self, odom: Pose) -> Estimate | None:
        """Between updates: the last estimate moved by the odometry since then."""
        est = self.estimate
        if est is None or self._odom is None:
            return est
        delta = relative(self._odom, odom)
        return Estimate(compose(est.pose, delta), est.covariance, est.score, est.particles, est.lost, False)

    def _beams(self, ranges: np.ndarray, angles: np.ndarray, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
        ok = np.isfinite(ranges) & (ranges >= self.range_min) & (ranges < self.range_max)
        r, a = ranges[ok], angles[ok]
        if limit and len(r) > limit:
            pick = np.linspace(0, len(r) - 1, limit).round().astype(np.int64)
            r, a = r[pick], a[pick]
        return r, a

    def _endpoints(self, poses: np.ndarray, r: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mx, my, myaw = self.mount
        cos, sin = np.cos(poses[:, 2]), np.sin(poses[:, 2])
        lx = poses[:, 0] + cos * mx - sin * my
        ly = poses[:, 1] + sin * mx + cos * my
        beam = poses[:, 2:3] + myaw + a[None, :]
        return lx[:, None] + r[None, :] * np.cos(beam), ly[:, None] + r[None, :] * np.sin(beam)

    def _update(self, ranges: np.ndarray, angles: np.ndarray) -> None:
        c = self.config
        r, a = self._beams(ranges, angles, c.max_beams)
        notes: list[str] = []
        if len(r) >= c.min_beams:
            ex, ey = self._endpoints(self.particles, r, a)
            weight = c.global_beam_weight if self.global_mode else c.beam_weight
            loglik = self.field.log_likelihood(ex, ey).sum(axis=1) * weight
            mean_beam = float(np.exp((loglik / (len(r) * weight)) @ self.weights))   # ~ per-beam likelihood
            if c.recovery_alpha_slow > 0 and c.recovery_alpha_fast > 0:
                self._w_slow += c.recovery_alpha_slow * (mean_beam - self._w_slow) if self._w_slow else mean_beam
                self._w_fast += c.recovery_alpha_fast * (mean_beam - self._w_fast) if self._w_fast else mean_beam
            logw = np.log(np.maximum(self.weights, 1e-300)) + loglik
            logw -= logw.max()
            w = np.exp(logw)
            self.weights = w / w.sum()
        else:
            notes.append(f'{len(r)} laser returns within range: no information, odometry only')
        self._estimate(ranges, angles, notes, informative=len(r) >= c.min_beams)
        if self.global_mode and len(r) >= c.min_beams:
            self._beams_now = (r, a)
            self._follow_hypotheses(r, a)
        n_eff = 1.0 / float((self.weights ** 2).sum())
        if n_eff < 0.5 * len(self.particles) or self.global_mode:
            self._resample()
            self.resampled = True

    # --- checkpoints: the filter's whole state at an update, for a replay to start from ----------
    def checkpoint(self) -> np.ndarray | None:
        """The particles (float[n, 3]) when they are the filter's whole state: right after a
        resample (uniform weights) while tracking (not relocalising, no non-matching update
        counted, no augmented-MCL averages); else None. With `restore` and the odometry pose of
        that update, a filter started from it continues exactly as this one does."""
        if not self.resampled or self.global_mode or self._bad_updates or self._w_slow or self._w_fast:
            return None
        return self.particles.copy()

    def restore(self, particles: np.ndarray, odom: Pose) -> None:
        """Continue from a `checkpoint` taken at the update whose odometry pose was `odom`."""
        p = np.asarray(particles, dtype=np.float64).reshape(-1, 3)
        if not len(p) or not np.isfinite(p).all():
            raise ValueError('a checkpoint needs finite particles')
        self._set(p.copy())
        self.global_mode = False
        self.hypotheses = []
        self._bad_updates = self._global_updates = 0
        self._w_slow = self._w_fast = 0.0
        self._odom = odom
        self._delta = (0.0, 0.0, 0.0)
        x, y = float(p[:, 0].mean()), float(p[:, 1].mean())
        theta = math.atan2(float(np.sin(p[:, 2]).mean()), float(np.cos(p[:, 2]).mean()))
        d = np.stack([p[:, 0] - x, p[:, 1] - y, wrap(p[:, 2] - theta)], axis=1)
        self.estimate = Estimate((x, y, theta), d.T @ d / len(p), math.nan, len(p), False)

    def _resample(self) -> None:
        c = self.config
        n_max = c.max_particles
        idx = low_variance_indices(self.weights, n_max, self.rng)
        self.rng.shuffle(idx)
        candidates = self.particles[idx]
        bins = np.stack([np.floor(candidates[:, 0] / c.kld_bin_xy), np.floor(candidates[:, 1] / c.kld_bin_xy),
                         np.floor((candidates[:, 2] + math.pi) / c.kld_bin_theta)], axis=1).astype(np.int64)
        _, first = np.unique(bins, axis=0, return_index=True)
        new_bin = np.zeros(n_max, dtype=np.int64)
        new_bin[first] = 1
        k = np.cumsum(new_bin)
        need = kld_count(k, c.kld_err, c.kld_z)
        enough = np.nonzero(np.arange(1, n_max + 1) >= np.maximum(need, c.min_particles))[0]
        n = int(enough[0]) + 1 if len(enough) and not self.global_mode else n_max
        particles = candidates[:n]
        if self.global_mode:                     # roughening: a standing robot's particles still explore
            particles = particles + self.rng.normal(0.0, 1.0, particles.shape) * (0.05, 0.05, 0.05)
        # augmented MCL: a share of random particles when the scan matches worse than it used to
        random_share = max(0.0, 1.0 - self._w_fast / self._w_slow) if self._w_slow > 0 else 0.0
        random_share = min(random_share, 0.25)
        if random_share > 0.01 and not self.global_mode:
            m = int(round(random_share * n))
            if m:
                particles = particles.copy()
                particles[self.rng.choice(n, m, replace=False)] = self._uniform(m)
        self._set(particles)
        if self.global_mode:
            self._global_updates += 1
            if self._global_updates >= c.global_restart_updates:
                self.relocalise_globally(keep_hypotheses=True)   # stuck on a look-alike place: draw new particles
                return
            if self._global_updates >= c.global_min_updates and self.estimate is not None \
                    and self.estimate.score >= c.global_accept_score and not self.estimate.ambiguous \
                    and float(np.trace(self.estimate.covariance[:2, :2])) < 0.05 \
                    and not self._look_alikes():
                self.global_mode = False
                self.hypotheses = []

    def _estimate(self, ranges: np.ndarray, angles: np.ndarray, notes: list[str], informative: bool = True) -> None:
        c = self.config
        p, w = self.particles, self.weights
        if not informative and self.estimate is not None:
            # nothing seen: the last estimate carried by odometry; the particles' spread (grown by the
            # motion model) is its covariance
            x, y, theta = compose(self.estimate.pose, self._delta)
            d = np.stack([p[:, 0] - x, p[:, 1] - y, wrap(p[:, 2] - theta)], axis=1)
            cov = (d * w[:, None]).T @ d
            self.estimate = Estimate((x, y, theta), cov, math.nan, len(p), self._bad_updates >= c.lost_after_updates,
                                     True, notes, degraded=True)
            return
        best = p[int(np.argmax(w))]
        near = (np.hypot(p[:, 0] - best[0], p[:, 1] - best[1]) < c.cluster_radius_m) & \
               (np.abs(wrap(p[:, 2] - best[2])) < 0.5)
        pc, wc = p[near], w[near]
        wc = wc / wc.sum()
        x, y = float(wc @ pc[:, 0]), float(wc @ pc[:, 1])
        theta = math.atan2(float(wc @ np.sin(pc[:, 2])), float(wc @ np.cos(pc[:, 2])))
        d = np.stack([pc[:, 0] - x, pc[:, 1] - y, wrap(pc[:, 2] - theta)], axis=1)
        cov = (d * wc[:, None]).T @ d
        # spread of the whole set, so a split filter does not look certain
        dall = np.stack([p[:, 0] - x, p[:, 1] - y, wrap(p[:, 2] - theta)], axis=1)
        cov = np.maximum(cov, (dall * w[:, None]).T @ dall * np.eye(3))
        pose = (x, y, theta)
        if informative:
            score = self.match_score(pose, ranges, angles)
            if score < c.lost_score:
                self._bad_updates += 1
            else:
                self._bad_updates = 0
        else:                                    # no returns: neither matching nor contrary evidence
            score = math.nan
        lost = self._bad_updates >= c.lost_after_updates
        self.estimate = Estimate(pose, cov, score, len(p), lost, True, notes, degraded=not informative)

    # --- global relocalisation: every place that matches ----------------------------------------
    def _follow_hypotheses(self, r: np.ndarray, a: np.ndarray) -> None:
        """Refine the kept hypotheses on this scan, add the posterior's new modes, drop the places
        the scans no longer match, and list in the estimate the places far from it that match
        about as well (`ambiguous`)."""
        for h in self.hypotheses:
            h.pose = self._refine(h.pose, r, a)
        self._add_modes(r, a)
        self._rescore_hypotheses(r, a)
        est = self.estimate
        if est is None or math.isnan(est.score):
            return
        self._mark_ambiguous(est)

    def _add_modes(self, r: np.ndarray, a: np.ndarray) -> None:
        """The posterior's modes become hypotheses (one near a kept one replaces its pose if better)."""
        c = self.config
        for pose, _share in posterior_modes(self.particles, self.weights, c.mode_separation_m, c.mode_min_share,
                                            c.max_hypotheses):
            near = [h for h in self.hypotheses if math.hypot(h.pose[0] - pose[0], h.pose[1] - pose[1])
                    < c.mode_separation_m]
            if near:                                 # the same place: keep the better of the two poses
                if self._score_beams(pose, r, a) > self._score_beams(near[0].pose, r, a):
                    near[0].pose = pose
            else:
                self.hypotheses.append(Hypothesis(pose, math.nan))

    def _rescore_hypotheses(self, r: np.ndarray, a: np.ndarray) -> None:
        """Score each hypothesis on this scan (averaged); drop those that missed 3 times; best first."""
        c = self.config
        keep = []
        for h in self.hypotheses:
            score = self._score_beams(h.pose, r, a)
            h.score = score if math.isnan(h.score) else 0.5 * (h.score + score)
            h.misses = h.misses + 1 if h.score < c.global_accept_score - 0.15 else 0
            if h.misses < 3:
                keep.append(h)
        keep.sort(key=lambda h: -h.score)
        self.hypotheses = keep[:c.max_hypotheses]

    def _mark_ambiguous(self, est: Estimate) -> None:
        """List in `est` the hypotheses far from it that match about as well as it does."""
        c = self.config
        best = max([est.score] + [h.score for h in self.hypotheses
                                  if math.hypot(h.pose[0] - est.pose[0], h.pose[1] - est.pose[1])
                                  < c.mode_separation_m])
        est.ambiguous = [h.pose for h in self.hypotheses
                         if math.hypot(h.pose[0] - est.pose[0], h.pose[1] - est.pose[1]) >= c.mode_separation_m
                         and h.score >= best - c.ambiguity_margin and h.score >= c.global_accept_score - 0.05]
        if est.ambiguous:
            where = ', '.join(f'({x:.1f}, {y:.1f})' for x, y, _ in [est.pose, *est.ambiguous])
            est.notes.append(f'not sure: the scans match {len(est.ambiguous) + 1} places equally well {where}')

    def _look_alikes(self) -> bool:
        """Before accepting the estimate: search the whole map once more for another place that
        explains the scan as well (a fresh uniform sample, its best far-away poses refined). Found
        ones become hypotheses and the estimate is ambiguous; True if any."""
        c, est = self.config, self.estimate
        if est is None or self._beams_now is None:
            return False
        r, a = self._beams_now
        sample = self._uniform(c.global_particles)
        far = np.hypot(sample[:, 0] - est.pose[0], sample[:, 1] - est.pose[1]) >= c.mode_separation_m
        sample = sample[far]
        if not len(sample):
            return False
        loglik = np.empty(len(sample))
        for k in range(0, len(sample), 5000):
            ex, ey = self._endpoints(sample[k:k + 5000], r, a)
            loglik[k:k + 5000] = self.field.log_likelihood(ex, ey).sum(axis=1)
        found = []
        for i in np.argsort(-loglik)[:24]:
            pose = tuple(float(v) for v in sample[i])
            if any(math.hypot(pose[0] - f[0], pose[1] - f[1]) < c.mode_separation_m for f in found):
                continue
            for std in (0.25, 0.12, 0.06, 0.03):
                pose = self._refine(pose, r, a, std=std, std_theta=std)
            if math.hypot(pose[0] - est.pose[0], pose[1] - est.pose[1]) < c.mode_separation_m:
                continue
            score = self._score_beams(pose, r, a)
            if score >= est.score - c.ambiguity_margin and score >= c.global_accept_score - 0.05:
                found.append(pose)
                self.hypotheses.append(Hypothesis(pose, score))
        if found:
            est.ambiguous = found
            where = ', '.join(f'({x:.1f}, {y:.1f})' for x, y, _ in [est.pose, *found])
            est.notes.append(f'not sure: the scans match {len(found) + 1} places equally well {where}')
        return bool(found)

    def _refine(self, pose: Pose, r: np.ndarray, a: np.ndarray, samples: int = 150, std: float = 0.06,
                std_theta: float = 0.04) -> Pose:
        """The best of a few poses around `pose` by the likelihood of the scan (a local search)."""
        cand = np.empty((samples + 1, 3))
        cand[0] = pose
        cand[1:, 0] = pose[0] + self.rng.normal(0.0, std, samples)
        cand[1:, 1] = pose[1] + self.rng.normal(0.0, std, samples)
        cand[1:, 2] = wrap(pose[2] + self.rng.normal(0.0, std_theta, samples))
        ex, ey = self._endpoints(cand, r, a)
        best = cand[int(np.argmax(self.field.log_likelihood(ex, ey).sum(axis=1)))]
        return float(best[0]), float(best[1]), float(best[2])

    def _score_beams(self, pose: Pose, r: np.ndarray, a: np.ndarray) -> float:
        ex, ey = self._endpoints(np.array([pose]), r, a)
        return float((self.field.distance_at(ex, ey) <= self.config.match_tolerance_m).mean())

    def match_score(self, pose: Pose, ranges: np.ndarray, angles: np.ndarray) -> float:
        """Share of the valid beams ending within match_tolerance_m of a mapped obstacle."""
        r, a = self._beams(np.asarray(ranges, dtype=np.float64), np.asarray(angles, dtype=np.float64), None)
        if not len(r):
            return 0.0
        ex, ey = self._endpoints(np.array([pose]), r, a)
        return float((self.field.distance_at(ex, ey) <= self.config.match_tolerance_m).mean())


def compose(a: Pose, b: Pose) -> Pose:
    """a ∘ b."""
    c, s = math.cos(a[2]), math.sin(a[2])
    return (a[0] + c * b[0] - s * b[1], a[1] + s * b[0] + c * b[1], float(wrap(a[2] + b[2])))


def inverse(a: Pose) -> Pose:
    c, s = math.cos(a[2]), math.sin(a[2])
    return (-c * a[0] - s * a[1], s * a[0] - c * a[1], float(wrap(-a[2])))


def relative(a: Pose, b: Pose) -> Pose:
    """a⁻¹ ∘ b: pose b seen from pose a."""
    return compose(inverse(a), b)


def map_to_odom(map_pose: Pose, odom_pose: Pose) -> Pose:
    """The map -> odom transform that makes map -> odom -> base_link equal map_pose."""
    return compose(map_pose, inverse(odom_pose))
