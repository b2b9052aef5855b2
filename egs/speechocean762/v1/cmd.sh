# cmd.sh: how run.sh launches its jobs; sourced by run.sh. Pick one block.
#
# Every *_cmd takes the launcher interface of tools/run.pl, queue.pl and slurm.pl:
#   $train_cmd [--num-threads N] [--gpu N] [--mem 4G] [--max-jobs-run N] JOB=1:N log/x.JOB.log command...
# run.sh adds the per-stage options (e.g. --gpu 1 for training); here goes what depends on the machine.

# This machine: jobs run locally, at most (CPUs / --num-threads) at a time.
export train_cmd="run.pl"
export feat_cmd="run.pl"
export extract_cmd="run.pl"

# Sun Grid Engine (qsub); resources mapped through conf/queue.conf.
# export train_cmd="queue.pl --config conf/queue.conf --mem 8G"
# export feat_cmd="queue.pl --config conf/queue.conf --mem 2G"
# export extract_cmd="queue.pl --config conf/queue.conf --mem 4G"

# Slurm (sbatch); resources mapped through conf/slurm.conf.
# export train_cmd="slurm.pl --config conf/slurm.conf --mem 8G"
# export feat_cmd="slurm.pl --config conf/slurm.conf --mem 2G"
# export extract_cmd="slurm.pl --config conf/slurm.conf --mem 4G"
