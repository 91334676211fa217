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

Poses are (x, y, theta) in metres and radians, in the map frame (REP-105).
"""
from __future__ import annotations

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


class ParticleFilter:
    """AMCL-style localisation on one store map. Feed `predict(odom)` and `update(scan)`, or both
    at once with `step(odom_pose, ranges, angles)`."""

    def __init__(self, store_map: StoreMap, config: AmclConfig | None = None, *, laser_mount: Pose = (0.0, 0.0, 0.0),
                 range_min: float = 0.15, range_max: float = 12.0, seed: int | None = None) -> None:
        self.config = config or AmclConfig()
        self.field = LikelihoodField(store_map, self.config)
        self.rng = np.random.default_rng(seed)
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
        self._odom = None                        # the next scan's odometry is the reference for `pose`
        self._bad_updates = 0
        self.estimate = Estimate(tuple(float(v) for v in pose), np.diag([sx * sx, sx * sx, st * st]), 1.0, n, False)

    def relocalise_globally(self) -> None:
        """Forget the pose: particles uniformly over the known free floor, any heading."""
        n = self.config.global_particles
        p = self._uniform(n)
        self._set(p)
        self.global_mode = True
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
    def step(self, odom: Pose, ranges: np.ndarray, angles: np.ndarray, force: bool = False) -> Estimate | None:
        """One scan with the odometry pose at its time. Updates only after `update_min_d` /
        `update_min_a` of motion (or `force`, or while relocalising globally); returns the
        estimate (`updated` tells whether the filter ran)."""
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
        self.particles = sample_motion_odometry(self.particles, self._odom, odom, c, self.rng)
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
        if len(r) >= 5:
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
            notes.append('too few laser returns to weigh the particles')
        self._estimate(ranges, angles, notes)
        n_eff = 1.0 / float((self.weights ** 2).sum())
        if n_eff < 0.5 * len(self.particles) or self.global_mode:
            self._resample()

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
                self.relocalise_globally()           # stuck on a look-alike place: draw new hypotheses
                return
            if self._global_updates >= c.global_min_updates and self.estimate is not None \
                    and self.estimate.score >= c.global_accept_score \
                    and float(np.trace(self.estimate.covariance[:2, :2])) < 0.05:
                self.global_mode = False

    def _estimate(self, ranges: np.ndarray, angles: np.ndarray, notes: list[str]) -> None:
        c = self.config
        p, w = self.particles, self.weights
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
        score = self.match_score(pose, ranges, angles)
        if score < c.lost_score:
            self._bad_updates += 1
        else:
            self._bad_updates = 0
        lost = self._bad_updates >= c.lost_after_updates
        self.estimate = Estimate(pose, cov, score, len(p), lost, True, notes)

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
