"""Kaldi data directories and trial lists."""

from wespeaker_like.data.kaldi_dir import (  # noqa: F401
    DataDir,
    read_table,
    read_list_table,
    write_table,
    spk2utt_to_utt2spk,
    utt2spk_to_spk2utt,
)
