"""The HPARAMS tab's data, written with TensorBoard's own hparams plugin protos: each run's
session, and no experiment.

An experiment summary fixes the columns, but TensorBoard reads one only, the first it finds:
under a logdir holding several sweeps, the other sweeps' keys had no column and their rows no
values. Without one, TensorBoard builds the columns from every run's session: the union of
every sweep's keys (empty where a sweep did not vary a key), each marked as differing when
its values do, and every scalar of the runs as a metric (the test split's among them once
`python -m src.evaluate` has run).

A listed value (a grid's) is written as text, as the job's name writes it: TensorBoard gives a
text column a box per value and an evenly spaced axis (1, 10, 100 apart, not squeezed
together), and shows `100`, not `100.00`. Values a sweeper sampled stay numbers (a continuous
axis, a min-max filter). Each run is its own row (a group of one session), named by its trial: in a sweep, its values, then its sweep (`src.tracking.hparams.trial_name`).
"""

import time

from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from src.tracking.hparams import HParams, shown


def session_start(hparams: HParams) -> Summary:
    # A group of one session, named by its trial (a run's own name when that is empty).
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time(), group_name=hparams.trial)
    for key, value in hparams.values.items():
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, int | float) and hparams.sampled:
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = shown(value)
    return _summary(
        metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)
    )


def session_end(pruned: bool = False) -> Summary:
    """The session's end: a success, or for a job a pruning sweep stopped early neither a
    success nor a failure (TensorBoard has no word for stopped early: its `unknown`; the
    run's `sweep/pruned_at_epoch` metric and `status` text say pruned)."""
    status = api_pb2.STATUS_UNKNOWN if pruned else api_pb2.STATUS_SUCCESS
    end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time())
    return _summary(
        metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)
    )


def _summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    return Summary(
        value=[
            Summary.Value(
                tag=tag,
                metadata=metadata.create_summary_metadata(data),
                tensor=metadata.NULL_TENSOR,
            )
        ]
    )
