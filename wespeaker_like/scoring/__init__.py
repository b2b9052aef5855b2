"""Stage 6/7 scoring: cosine scoring (mean normalisation, AS-norm), PLDA, linear calibration,
EER/minDCF/DET/Cllr, score files.

Plotting lives in ``wespeaker_like.scoring.plots`` and is not imported here (matplotlib is slow
to import and only the report needs it).
"""

from wespeaker_like.scoring.calibration import LinearCalibration, read_calibration, write_calibration
from wespeaker_like.scoring.cosine import (
    EmbeddingTable, asnorm_statistics, l2_normalise, load_embeddings, mean_vector, normalise,
    score_trials,
)
from wespeaker_like.scoring.metrics import (
    DcfResult, DetCurve, bayes_threshold, compute_act_dcf, compute_cllr, compute_eer, compute_metrics,
    compute_min_dcf, det_curve, eer_from_curve, min_dcf_from_curve, summary_line,
)
from wespeaker_like.scoring.plda import PldaBackend, TwoCovPLDA, fit_lda, plda_score_trials
from wespeaker_like.scoring.scores import align_scores, read_scores, write_results, write_scores

__all__ = [
    "EmbeddingTable", "asnorm_statistics", "l2_normalise", "load_embeddings", "mean_vector",
    "normalise", "score_trials", "DcfResult", "DetCurve", "compute_eer", "compute_metrics",
    "compute_min_dcf", "det_curve", "eer_from_curve", "min_dcf_from_curve", "summary_line", "align_scores",
    "read_scores", "write_results", "write_scores", "LinearCalibration", "read_calibration", "write_calibration",
    "bayes_threshold", "compute_act_dcf", "compute_cllr", "PldaBackend", "TwoCovPLDA", "fit_lda",
    "plda_score_trials",
]
