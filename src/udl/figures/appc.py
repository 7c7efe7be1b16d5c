"""Appendix C: probability (joint, marginal and conditional densities)."""

from __future__ import annotations

import numpy as np

from udl import style
from udl.analysis.probability import (GaussianMixture2D, bayes_rule, conditional_x_given_y,
                                      conditional_y_given_x, independence_gap, independent_joint, integrate,
                                      integrate_2d, marginal_x, marginal_y, mutual_information, slice_x_given_y)
from udl.registry import Check, Result, figure

# The dependent joint density of figs. C.1-C.2: three correlated normals on the box
# x in [-2, 12], y in [-6, 10], which holds all but about 1e-7 of the mass.
JOINT = GaussianMixture2D(weights=(0.45, 0.35, 0.20),
                          means=((5.0, 0.0), (3.0, 3.5), (7.0, 3.0)),
                          covs=(((1.2, 0.6), (0.6, 1.0)), ((0.8, -0.4), (-0.4, 1.0)), ((1.0, 0.5), (0.5, 1.5))))
X_RANGE, Y_RANGE = (-2.0, 12.0), (-6.0, 10.0)
VIEW_X, VIEW_Y = (0.0, 10.0), (-4.0, 8.0)  # the part of the box the drawings show
SLICES = (3.0, -1.0)  # the book's conditioning values y = 3.0 and y = -1.0 (fig. C.2)
PARAMS = {"tiny": dict(spacing=0.125), "full": dict(spacing=0.025)}
LIMITS = {"spacing": (0.01, 1.0)}  # 2.2 million grid points at the finest


def _grid(spacing: float):
    x = np.linspace(*X_RANGE, int(round((X_RANGE[1] - X_RANGE[0]) / spacing)) + 1)
    y = np.linspace(*Y_RANGE, int(round((Y_RANGE[1] - Y_RANGE[0]) / spacing)) + 1)
    return x, y


def _joint_on_grid(spacing: float):
    """The dependent joint of figs. C.1-C.2 on the grid, with its marginals by the trapezoid rule.

    Returns:
        ``x`` (Nx,), ``y`` (Ny,), the joint (Ny, Nx), ``Pr(x)`` (Nx,) and ``Pr(y)`` (Ny,).
    """
    x, y = _grid(spacing)
    joint = JOINT.grid(x, y)  # (Ny, Nx)
    return x, y, joint, marginal_x(joint, x, y), marginal_y(joint, x, y)


def _extent():
    return (*X_RANGE, *Y_RANGE)


def _joint_panel(ax, joint, title, slices=()):
    ax.imshow(joint, origin="lower", extent=_extent(), cmap=style.CMAP, aspect="auto")
    for y0 in slices:
        ax.axhline(y0, color=style.MODEL, lw=1.5)
    ax.set(xlabel="x", ylabel="y", title=title, xlim=VIEW_X, ylim=VIEW_Y)


def _curve_panel(ax, t, curve, reference, labels, **axes_settings):
    """A computed density (cyan) over the one it should equal (dashed black), with a legend."""
    ax.plot(t, curve, color=style.MODEL, lw=2, label=labels[0])
    ax.plot(t, reference, "--", color=style.TRUTH, lw=1, label=labels[1])
    ax.set(**axes_settings)
    ax.legend(fontsize=7)


# --------------------------------------------------------------------------- C.1
@figure("C.1", title="Joint and marginal distributions",
        caption="a) A joint density Pr(x, y) on a grid (a mixture of three correlated normals); brighter means "
                "more probable, so (x, y) = (5, 0) is far more likely than (6, 6). b) Integrating the joint over "
                "y gives the marginal Pr(x); c) integrating over x gives Pr(y). Both marginals, computed by the "
                "trapezoid rule on the grid, integrate to one and agree with their closed forms (dashed).",
        params=PARAMS, limits=LIMITS)
def joint_and_marginals(p, run):
    x, y, joint, px, py = _joint_on_grid(p.spacing)
    return Result(
        metrics={"grid_points": [int(x.size), int(y.size)],
                 "joint_integral": integrate_2d(joint, x, y),
                 "marginal_x_integral": integrate(px, x), "marginal_y_integral": integrate(py, y),
                 "marginal_x_max_error": float(np.abs(px - JOINT.marginal_x(x)).max()),
                 "marginal_y_max_error": float(np.abs(py - JOINT.marginal_y(y)).max()),
                 "density_5_0": float(JOINT.pdf(5.0, 0.0)), "density_6_6": float(JOINT.pdf(6.0, 6.0))},
        arrays={"x": x, "y": y, "joint": joint, "px": px, "py": py,
                "px_closed": JOINT.marginal_x(x), "py_closed": JOINT.marginal_y(y)},
        notes="The book does not give its density; udl uses a three-component normal mixture chosen to "
              "match the caption's example.")


@joint_and_marginals.plot
def _(r):
    a = r.arrays
    fig, axes = style.subplots(1, 3)
    _joint_panel(axes[0], a["joint"], "Joint Pr(x, y)")
    _curve_panel(axes[1], a["x"], a["px"], a["px_closed"], ("∫ Pr(x, y) dy", "closed form"),
                 xlabel="x", ylabel="Pr(x)", title="Marginal Pr(x)", xlim=VIEW_X)
    _curve_panel(axes[2], a["y"], a["py"], a["py_closed"], ("∫ Pr(x, y) dx", "closed form"),
                 xlabel="y", ylabel="Pr(y)", title="Marginal Pr(y)", xlim=VIEW_Y)
    style.panel_labels(axes)
    return fig


@joint_and_marginals.checks
def _(r):
    m = r.metrics
    return [Check.close("the joint integrates to 1 over the grid", m["joint_integral"], 1.0, 1e-6),
            Check.close("Pr(x) integrates to 1", m["marginal_x_integral"], 1.0, 1e-6),
            Check.close("Pr(y) integrates to 1", m["marginal_y_integral"], 1.0, 1e-6),
            Check.less("Pr(x) by integration equals its closed form (largest error)", m["marginal_x_max_error"], 1e-6),
            Check.less("Pr(y) by integration equals its closed form (largest error)", m["marginal_y_max_error"], 1e-6),
            Check.greater("(x, y) = (5, 0) is far more probable than (6, 6) (density ratio)",
                          m["density_5_0"] / m["density_6_6"], 10.0)]


# --------------------------------------------------------------------------- C.2
@figure("C.2", title="Conditional distributions",
        caption="a) The joint density of fig. C.1 with two horizontal slices (cyan) at y = 3.0 and y = -1.0. "
                "b-c) Dividing each slice Pr(x, y = y0) by its area Pr(y = y0) gives the conditional "
                "Pr(x | y = y0), which integrates to one; the two conditionals differ in shape. Bayes' rule "
                "Pr(x|y) Pr(y) = Pr(y|x) Pr(x) holds on the whole grid, and the slices agree with the "
                "closed-form conditionals (dashed).",
        params=PARAMS, limits=LIMITS)
def conditionals(p, run):
    x, y, joint, px, py = _joint_on_grid(p.spacing)
    x_given_y, y_given_x = conditional_x_given_y(joint, x, y), conditional_y_given_x(joint, x, y)
    posterior = bayes_rule(y_given_x, px, x)  # Pr(x|y) rebuilt from Pr(y|x) and Pr(x)
    metrics, arrays = {}, {"x": x, "y": y, "joint": joint}
    for name, y0 in zip(("upper", "lower"), SLICES):
        cond, area = slice_x_given_y(joint, x, y, y0)
        closed = JOINT.conditional_x_given_y(x, y0)
        metrics[f"{name}_y"] = y0
        metrics[f"{name}_integral"] = integrate(cond, x)
        metrics[f"{name}_area_error"] = abs(area - float(JOINT.marginal_y(y0)))
        metrics[f"{name}_max_error_closed_form"] = float(np.abs(cond - closed).max())
        arrays[f"{name}_cond"], arrays[f"{name}_closed"] = cond, closed
    metrics["bayes_max_abs_diff"] = float(np.abs(x_given_y * py[:, None] - y_given_x * px[None, :]).max())
    metrics["bayes_rule_vs_slices"] = float(np.abs(posterior - x_given_y).max())
    metrics["conditionals_differ_by"] = float(np.abs(arrays["upper_cond"] - arrays["lower_cond"]).max())
    return Result(metrics=metrics, arrays=arrays,
                  notes="The joint is udl's three-component normal mixture (see C.1), not the book's.")


@conditionals.requires
def _(p):
    # the slices are compared with closed forms at y = 3 and y = -1 exactly: they must be grid rows, as they
    # are when the spacing divides 1 (the box's corners are whole numbers); between rows they are interpolated
    if abs(1 / p.spacing - round(1 / p.spacing)) > 1e-9 * (1 / p.spacing):
        raise ValueError(f"The 'spacing' parameter of figure C.2 must divide 1 (1 / spacing a whole number: 0.5, "
                         f"0.25, 0.2, 0.125, 0.1...) so that y = {SLICES[0]:g} and y = {SLICES[1]:g} are grid rows. "
                         f"Got {p.spacing:g} instead.")


@conditionals.plot
def _(r):
    a, m = r.arrays, r.metrics
    fig, axes = style.subplots(1, 3)
    _joint_panel(axes[0], a["joint"], "Joint Pr(x, y)", slices=SLICES)
    for ax, name in zip(axes[1:], ("upper", "lower")):
        y0 = m[f"{name}_y"]
        _curve_panel(ax, a["x"], a[f"{name}_cond"], a[f"{name}_closed"], ("slice / area", "closed form"),
                     xlabel="x", ylabel=f"Pr(x | y = {y0:.1f})", title=f"Conditional at y = {y0:.1f}", xlim=VIEW_X)
    style.panel_labels(axes)
    return fig


@conditionals.checks
def _(r):
    m = r.metrics
    checks = []
    for name in ("upper", "lower"):
        y0 = m[f"{name}_y"]
        checks += [Check.close(f"Pr(x | y = {y0:.1f}) integrates to 1", m[f"{name}_integral"], 1.0, 1e-12),
                   Check.less(f"Pr(x | y = {y0:.1f}) equals the closed-form conditional (largest error)",
                              m[f"{name}_max_error_closed_form"], 1e-6)]
    checks += [Check.less("Bayes' rule: Pr(x|y)Pr(y) = Pr(y|x)Pr(x) on the grid (largest difference)",
                          m["bayes_max_abs_diff"], 1e-12),
               Check.less("Pr(x|y) from Bayes' rule equals the normalised slices (largest difference)",
                          m["bayes_rule_vs_slices"], 1e-9),
               Check.greater("the two conditionals differ (x and y are dependent)", m["conditionals_differ_by"], 0.05)]
    return checks


# --------------------------------------------------------------------------- C.3
@figure("C.3", title="Independence",
        caption="a) A joint density of independent variables, the product Pr(x) Pr(y) of the marginals of "
                "fig. C.1. b-c) Every conditional Pr(x | y = y0) (cyan) is then the same curve, the marginal "
                "Pr(x) (dashed): knowing y says nothing about x. For contrast, the dependent joint of C.1 has "
                "conditionals far from its marginal and a positive mutual information.",
        params=PARAMS, limits=LIMITS)
def independence(p, run):
    x, y, dependent, px, py = _joint_on_grid(p.spacing)
    px, py = px / integrate(px, x), py / integrate(py, y)  # exactly normalised on the grid
    joint = independent_joint(px, py)  # Pr(x) Pr(y), (Ny, Nx)

    def conditional_gap(j):
        """Largest |Pr(x | y) - Pr(x)| over all rows y whose slice has non-negligible area."""
        cond, rows = conditional_x_given_y(j, x, y), marginal_y(j, x, y) > 1e-8
        return float(np.abs(cond[rows] - marginal_x(j, x, y)[None, :]).max())

    arrays = {"x": x, "y": y, "joint": joint, "px": marginal_x(joint, x, y)}
    for name, y0 in zip(("upper", "lower"), SLICES):
        arrays[f"{name}_cond"] = slice_x_given_y(joint, x, y, y0)[0]
    return Result(
        metrics={"slices": list(SLICES),
                 "independent_conditional_gap": conditional_gap(joint),
                 "dependent_conditional_gap": conditional_gap(dependent),
                 "independent_factorisation_gap": independence_gap(joint, x, y),
                 "dependent_factorisation_gap": independence_gap(dependent, x, y),
                 "independent_mutual_information": mutual_information(joint, x, y),
                 "dependent_mutual_information": mutual_information(dependent, x, y)},
        arrays=arrays,
        notes="The independent joint is built from the marginals of udl's mixture of C.1, not the book's density.")


@independence.plot
def _(r):
    a, m = r.arrays, r.metrics
    fig, axes = style.subplots(1, 3)
    _joint_panel(axes[0], a["joint"], "Pr(x, y) = Pr(x) Pr(y)", slices=m["slices"])
    for ax, name, y0 in zip(axes[1:], ("upper", "lower"), m["slices"]):
        _curve_panel(ax, a["x"], a[f"{name}_cond"], a["px"], (f"Pr(x | y = {y0:.1f})", "Pr(x)"),
                     xlabel="x", ylabel="density", title=f"Conditional at y = {y0:.1f}", xlim=VIEW_X)
    style.panel_labels(axes)
    return fig


@independence.checks
def _(r):
    m = r.metrics
    return [Check.less("independent: every conditional Pr(x|y) equals Pr(x) (largest difference)",
                       m["independent_conditional_gap"], 1e-12),
            Check.less("independent: Pr(x, y) = Pr(x) Pr(y) on the grid (largest difference)",
                       m["independent_factorisation_gap"], 1e-12),
            Check.close("independent: mutual information is zero (nats)", m["independent_mutual_information"], 0.0,
                        1e-9),
            Check.greater("dependent (C.1): conditionals differ from Pr(x) (largest difference)",
                          m["dependent_conditional_gap"], 0.05),
            Check.greater("dependent (C.1): mutual information is positive (nats)",
                          m["dependent_mutual_information"], 0.05)]
