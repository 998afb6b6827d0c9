"""The ``fastembed`` command's options: one per training setting, generated from
:mod:`fastembed.settings`, and the options several commands share.

A setting's type, range and choices become its click type (:func:`cli_type`), so a value out of
range is a usage error before any work; its help and default come from the same declaration.
"""

import inspect
import math
import os

import click

from fastembed.settings import (
    DEFAULT_MAX_LINE_BYTES,
    MAX_LINE_BYTES_LIMIT,
    SETTINGS,
    describe_presets,
)

__all__ = ["Probability", "cli_type", "k_option", "max_line_option", "settings_options", "threshold_option",
           "with_presets"]


def max_line_option(command):
    """--max-line-bytes: the reader's line limit for the duration of the command."""
    def apply(ctx, param, value):
        from fastembed.text.reader import line_limit

        ctx.with_resource(line_limit(value))

    return click.option(
        "--max-line-bytes", type=click.IntRange(1, MAX_LINE_BYTES_LIMIT),
        default=DEFAULT_MAX_LINE_BYTES, show_default=True, expose_value=False, callback=apply,
        help="Longest line accepted, in bytes; a longer one is an error naming it.")(command)


class Probability(click.FloatRange):
    """A float in [0, 1]; unlike click.FloatRange, NaN is refused."""

    name = "probability"

    def __init__(self):
        super().__init__(0.0, 1.0)

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if math.isnan(rv):
            self.fail(f"{value!r} is not a number between 0 and 1.", param, ctx)
        return rv


def threshold_option(help_text):
    return click.option("--threshold", type=Probability(), default=0.0, show_default=True,
                        help=help_text)


def cli_type(setting):
    """The click type of a setting: its choices, or its type with its range (out of range is a usage error)."""
    if setting.choices:
        return click.Choice(setting.choices)
    if setting.kind is int:
        return click.IntRange(setting.low, setting.high)
    if setting.kind is float:
        return click.FloatRange(setting.low, setting.high, min_open=setting.low_open)
    if setting.kind is os.PathLike:
        return click.Path(dir_okay=False)
    return click.STRING


def settings_options(command, settings=SETTINGS):
    """One option per training setting, from :data:`fastembed.settings.SETTINGS` (or ``settings``)."""
    for setting in reversed(settings):
        default = "the preset's" if setting.preset_dependent else repr(setting.default)
        kind = {"is_flag": True} if setting.kind is bool else {"type": cli_type(setting)}
        # A flag on by default needs its off switch: --autotune-refit/--no-autotune-refit.
        option = f"{setting.option}/--no-{setting.option[2:]}" if setting.default is True else setting.option
        command = click.option(option, setting.name, default=None, **kind,
                               help=f"{setting.help} [default: {default}]")(command)
    return command


def with_presets(command):
    command.help = inspect.cleandoc(command.help) + "\n\n\b\n" + "\n".join(describe_presets())
    return command


def k_option(f):
    return click.option("-k", "k", type=int, default=1, show_default=True,
                        help="Labels per line (-1: all).")(f)
