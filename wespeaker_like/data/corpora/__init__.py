"""Real corpora: stage 0 (download) and stage 1 (Kaldi data dirs + official trials).

One module per corpus (``speechocean762``, ``voxceleb``, ``cnceleb``, ``ffsvc``, ``musan``, ``rirs_noises``) plus
``download`` (resumable HTTP, MD5, parts, extraction) and ``common`` (checks and output).
Entry points: ``python -m wespeaker_like.bin.download_corpus`` and
``python -m wespeaker_like.bin.prepare_corpus``. See docs/corpora.md.
"""

from wespeaker_like.data.corpora import cnceleb, musan, rirs_noises, speechocean762, voxceleb

# name -> (archives, default base URL); FFSVC is distributed on request only (no entry).
DOWNLOADS = {
    "voxceleb1": (voxceleb.VOX1_ARCHIVES + voxceleb.VOX1_TRIAL_ARCHIVES, voxceleb.BASE_URL),
    "voxceleb2": (voxceleb.VOX2_ARCHIVES, voxceleb.BASE_URL),
    "cnceleb": (cnceleb.ARCHIVES, cnceleb.BASE_URL),
    "musan": (musan.ARCHIVES, musan.BASE_URL),
    "rirs_noises": (rirs_noises.ARCHIVES, rirs_noises.BASE_URL),
    "speechocean762": (speechocean762.ARCHIVES, speechocean762.BASE_URL),
}
