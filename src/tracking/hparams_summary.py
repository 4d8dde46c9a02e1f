"""The HPARAMS tab's data, written with TensorBoard's own hparams plugin protos.

torch's `hparams()` cannot mark which hyperparameters differ, and TensorBoard shows the first
five columns by (differs, name), so a swept `seed` behind five fixed overrides started hidden.
Here the experiment lists a sweep's swept keys only, each marked as differing: they are the
visible columns. A session's group name is left empty, so each run is its own row, named by
its run (two sweeps' `seed=0` jobs stay two rows under one logdir).
"""

import time

from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from src.tracking.hparams import HParams, HParamValue


def experiment(hparams: HParams, metrics: tuple[str, ...]) -> Summary:
    """The columns: the swept keys (differing) first, then any other hyperparameter."""
    infos = [
        api_pb2.HParamInfo(name=key, type=_data_type(value), differs=key in hparams.swept)
        for key, value in sorted(hparams.values.items(), key=lambda kv: kv[0] not in hparams.swept)
    ]
    metric_infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metrics]
    return _summary(
        metadata.EXPERIMENT_TAG,
        plugin_data_pb2.HParamsPluginData(
            experiment=api_pb2.Experiment(
                hparam_infos=infos, metric_infos=metric_infos, time_created_secs=time.time()
            )
        ),
    )


def session_start(hparams: HParams) -> Summary:
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for key, value in hparams.values.items():
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, int | float):
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = value
    return _summary(
        metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)
    )


def session_end() -> Summary:
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=time.time())
    return _summary(
        metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)
    )


def _data_type(value: HParamValue) -> int:
    if isinstance(value, bool):
        return api_pb2.DATA_TYPE_BOOL
    return api_pb2.DATA_TYPE_FLOAT64 if isinstance(value, int | float) else api_pb2.DATA_TYPE_STRING


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
