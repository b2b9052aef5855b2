"""tools/run.pl, queue.pl, slurm.pl: the shared launcher interface, local runs, and cluster
submission against fake qsub/sbatch executables."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools"
sys.path.insert(0, str(TOOLS))

from launchers.config import parse_config  # noqa: E402
from launchers.request import LauncherError, parse_request, shell_command  # noqa: E402

FAKE_QSUB = r"""#!/bin/bash
# Fake qsub: records its arguments one per line, runs every array task of the job script in the
# background (except those in $FAKE_SKIP_TASKS), prints what SGE prints.
printf '%s\n' "$@" > "$FAKE_RECORD"
prev=
for arg in "$@"; do [ "$prev" = -t ] && range=$arg; prev=$arg; done
script=${!#}
for ((task=${range%:*}; task<=${range#*:}; task++)); do
  [[ " ${FAKE_SKIP_TASKS:-} " == *" $task "* ]] && continue
  SGE_TASK_ID=$task bash "$script" > /dev/null 2>&1 &
done
echo "Your job-array 4242.${range}:1 (\"job\") has been submitted"
"""

FAKE_SBATCH = r"""#!/bin/bash
# Fake sbatch: records its arguments one per line, runs every array task in the background.
printf '%s\n' "$@" > "$FAKE_RECORD"
for arg in "$@"; do [[ $arg == --array=* ]] && range=${arg#--array=}; done
range=${range%%%*}
script=${!#}
for ((task=${range%-*}; task<=${range#*-}; task++)); do
  [[ " ${FAKE_SKIP_TASKS:-} " == *" $task "* ]] && continue
  SLURM_ARRAY_TASK_ID=$task bash "$script" > /dev/null 2>&1 &
done
echo "Submitted batch job 4242"
"""

# A scheduler status command that says the job is gone, as qstat/squeue do for finished jobs.
FAKE_QSTAT = """#!/bin/bash
echo "Following jobs do not exist or permissions are not sufficient: $2"
exit 1
"""

TEST_QUEUE_CONF = """\
command qsub -cwd -j y   # a comment
option mem=* -l mem_free=$0
option num_threads=* -pe smp $0
option num_threads=1
default gpu=0
option gpu=0 -q all.q
option gpu=* -l gpu=$0 -q g.q
"""

TEST_SLURM_CONF = """\
command sbatch --export=PATH
option mem=* --mem-per-cpu=$0
option num_threads=* --cpus-per-task=$0
default gpu=0
option gpu=0 -p cpu
option gpu=* --gres=gpu:$0 -p gpu
"""


def launch(tmp_path: Path, launcher: str, *args: str, env: dict | None = None, timeout: float = 30):
    """Run a launcher with cwd=tmp_path (fast polling for the cluster ones)."""
    full_env = dict(os.environ, WESPEAKER_POLL_INTERVAL="0.05", **(env or {}))
    return subprocess.run([str(TOOLS / launcher), *args], cwd=tmp_path, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def read_log(path: Path) -> list[str]:
    return path.read_text().splitlines()


def check_log_frame(lines: list[str], command: str, code: int, threads: int = 1) -> list[str]:
    """Assert the header/footer lines; return the job's own output lines."""
    assert lines[0] == f"# {command}"
    assert lines[1].startswith("# Started at ")
    assert lines[2].startswith("# Running on ")
    assert re.fullmatch(rf"# Accounting: time=\d+ threads={threads}", lines[-2])
    assert re.fullmatch(rf"# Ended \(code {code}\) at .+, elapsed time \d+ seconds", lines[-1])
    return lines[3:-2]


# --- command line ----------------------------------------------------------------------------

def test_parse_request_options_range_and_substitution():
    request = parse_request(["--num-threads", "4", "--mem=2G", "--max_jobs_run", "2", "--config", "c.conf",
                             "TASK=2:4", "log/x.TASK.log", "prog", "--in", "split/TASK", "a b"])
    assert request.options == {"num_threads": "4", "mem": "2G", "max_jobs_run": "2"}
    assert request.config == "c.conf"
    assert list(request.tasks) == [2, 3, 4]
    assert request.log_path(3) == Path("log/x.3.log")
    assert request.command(3) == "prog --in split/3 'a b'"
    assert request.log_pattern == "log/x.*.log"


def test_shell_command_joins_kaldi_style():
    assert shell_command(["cat x | sort"]) == "cat x | sort"  # one argument: a shell line
    assert shell_command(["cat", "x", "|", "sort"]) == "cat x | sort"  # escaped \| stays an operator
    assert shell_command(["echo", "a  b", "it's", ""]) == "echo 'a  b' it's ''"


@pytest.mark.parametrize("argv, message", [
    (["JOB=1:3", "log/x.log", "true"], "put JOB into the log name"),
    (["JOB=3:1", "log/x.JOB.log", "true"], "bad job range"),
    (["JOB=0:2", "log/x.JOB.log", "true"], "bad job range"),
    (["--num-threads", "0", "log/x.log", "true"], "--num-threads expects an integer >= 1"),
    (["--gpu", "one", "log/x.log", "true"], "--gpu expects an integer >= 0"),
    (["--mem"], "option --mem needs a value"),
    (["log/x.log"], "expected a log file and a command"),
    (["--Bad", "1", "log/x.log", "true"], "bad option name"),
])
def test_parse_request_errors(argv, message):
    with pytest.raises(LauncherError, match=re.escape(message)):
        parse_request(argv)


def test_usage_errors_exit_1(tmp_path):
    result = launch(tmp_path, "run.pl", "JOB=1:2", "log/x.log", "true")
    assert result.returncode == 1
    assert result.stderr.startswith("run.pl: error: 2 jobs would share the log 'log/x.log'")
    help_result = launch(tmp_path, "queue.pl", "--help")
    assert help_result.returncode == 0 and help_result.stdout.startswith("usage: queue.pl")


# --- run.pl ----------------------------------------------------------------------------------

def test_run_pl_substitutes_job_and_writes_logs(tmp_path):
    result = launch(tmp_path, "run.pl", "JOB=1:3", "log/x.JOB.log", "echo", "job JOB of 3", "out.JOB")
    assert result.returncode == 0, result.stderr
    for task in (1, 2, 3):
        lines = read_log(tmp_path / f"log/x.{task}.log")
        assert check_log_frame(lines, f"echo 'job {task} of 3' out.{task}", 0) == [f"job {task} of 3 out.{task}"]


def test_run_pl_single_job_pipes_and_redirections(tmp_path):
    result = launch(tmp_path, "run.pl", "log/one.log", "printf 'b\\na\\n' | sort > sorted.txt; echo err >&2")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sorted.txt").read_text() == "a\nb\n"
    assert check_log_frame(read_log(tmp_path / "log/one.log"),
                           "printf 'b\\na\\n' | sort > sorted.txt; echo err >&2", 0) == ["err"]
    # Kaldi style: an escaped pipe as its own argument is a shell operator.
    result = launch(tmp_path, "run.pl", "TASK=1:2", "log/p.TASK.log", "echo", "abc TASK", "|", "tr", "a-z", "A-Z")
    assert result.returncode == 0, result.stderr
    assert check_log_frame(read_log(tmp_path / "log/p.2.log"), "echo 'abc 2' | tr a-z A-Z", 0) == ["ABC 2"]


def test_run_pl_failing_job_names_its_log(tmp_path):
    result = launch(tmp_path, "run.pl", "JOB=1:3", "log/f.JOB.log", "echo JOB; [ JOB -ne 2 ]")
    assert result.returncode == 1
    assert "run.pl: 1 / 3 failed, log is in log/f.*.log" in result.stderr
    assert "log/f.2.log" in result.stderr and "log/f.1.log" not in result.stderr
    check_log_frame(read_log(tmp_path / "log/f.2.log"), "echo 2; [ 2 -ne 2 ]", 1)
    check_log_frame(read_log(tmp_path / "log/f.3.log"), "echo 3; [ 3 -ne 2 ]", 0)
    single = launch(tmp_path, "run.pl", "log/s.log", "exit 3")
    assert single.returncode == 1
    assert "run.pl: job failed, log is in log/s.log" in single.stderr
    check_log_frame(read_log(tmp_path / "log/s.log"), "exit 3", 3)


def test_run_pl_respects_max_jobs_run(tmp_path):
    command = "date +%s.%N > t.JOB.start; sleep 0.4; date +%s.%N > t.JOB.end"
    result = launch(tmp_path, "run.pl", "--max-jobs-run", "2", "JOB=1:4", "log/m.JOB.log", command)
    assert result.returncode == 0, result.stderr
    spans = [(float((tmp_path / f"t.{t}.start").read_text()), float((tmp_path / f"t.{t}.end").read_text()))
             for t in range(1, 5)]
    for start, _ in spans:
        running = sum(1 for s, e in spans if s <= start < e)
        assert running <= 2
    assert max(e for _, e in spans) - min(s for s, _ in spans) >= 0.75  # two rounds of 0.4 s


def test_run_pl_num_threads_exported(tmp_path):
    result = launch(tmp_path, "run.pl", "--num-threads", "3", "log/t.log", "echo $OMP_NUM_THREADS $MKL_NUM_THREADS")
    assert result.returncode == 0, result.stderr
    assert check_log_frame(read_log(tmp_path / "log/t.log"), "echo $OMP_NUM_THREADS $MKL_NUM_THREADS", 0,
                           threads=3) == ["3 3"]


def test_run_pl_gpus_are_not_shared_between_running_jobs(tmp_path):
    command = "echo $CUDA_VISIBLE_DEVICES > g.JOB; sleep 0.2"
    result = launch(tmp_path, "run.pl", "--gpu", "1", "--max-jobs-run", "4", "JOB=1:4", "log/g.JOB.log", command,
                    env={"CUDA_VISIBLE_DEVICES": "3,5"})
    assert result.returncode == 0, result.stderr
    assert sorted((tmp_path / f"g.{t}").read_text().strip() for t in range(1, 5)) == ["3", "3", "5", "5"]
    too_many = launch(tmp_path, "run.pl", "--gpu", "3", "log/g.log", "true", env={"CUDA_VISIBLE_DEVICES": "3,5"})
    assert too_many.returncode == 1 and "only 2 GPUs are visible" in too_many.stderr


def test_run_pl_without_gpus_warns_and_runs(tmp_path):
    result = launch(tmp_path, "run.pl", "--gpu", "1", "log/g.log", "echo ${CUDA_VISIBLE_DEVICES-unset}",
                    env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0
    assert "no GPU is visible" in result.stderr


def test_run_pl_sigterm_kills_running_jobs(tmp_path):
    process = subprocess.Popen([str(TOOLS / "run.pl"), "--max-jobs-run", "1", "JOB=1:3", "log/k.JOB.log",
                                "sleep 30 & echo $! > pid.JOB; wait"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    for _ in range(200):
        if (tmp_path / "pid.1").is_file() and (tmp_path / "pid.1").read_text().strip():
            break
        time.sleep(0.025)
    start = time.monotonic()
    process.terminate()
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 128 + signal.SIGTERM
    assert time.monotonic() - start < 5
    assert "2 jobs were not started" in stderr
    assert not (tmp_path / "pid.2").exists()
    assert not sleep_is_alive(int((tmp_path / "pid.1").read_text()))  # the job's own child died too
    check_log_frame(read_log(tmp_path / "log/k.1.log"), "sleep 30 & echo $! > pid.1; wait", 128 + signal.SIGTERM)


def sleep_is_alive(pid: int) -> bool:
    """Whether a (non-zombie) process with this pid still exists after a short grace time."""
    for _ in range(100):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return False
        if state == "Z":
            return False
        time.sleep(0.02)
    return True


def test_run_pl_ignores_scheduler_only_options(tmp_path):
    result = launch(tmp_path, "run.pl", "--mem", "4G", "--config", "none.conf", "--time", "1:00:00",
                    "log/i.log", "true")
    assert result.returncode == 0, result.stderr


# --- queue.pl / slurm.pl against fake schedulers ----------------------------------------------

@pytest.fixture()
def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name, text in (("qsub", FAKE_QSUB), ("sbatch", FAKE_SBATCH)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def cluster_env(fake_bin: Path, **extra: str) -> dict:
    return {"PATH": f"{fake_bin}:{os.environ['PATH']}", "FAKE_RECORD": str(fake_bin / "record"), **extra}


def recorded(fake_bin: Path) -> list[str]:
    return (fake_bin / "record").read_text().splitlines()


def test_queue_pl_submits_one_array_job_with_mapped_options(tmp_path, fake_bin):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/test.conf").write_text(TEST_QUEUE_CONF)
    result = launch(tmp_path, "queue.pl", "--config", "conf/test.conf", "--mem", "4G", "--num-threads", "2",
                    "--gpu", "1", "--max-jobs-run", "2", "JOB=1:3", "exp/log/x.JOB.log",
                    "echo task JOB $OMP_NUM_THREADS; [ JOB -ne 2 ]", env=cluster_env(fake_bin))
    assert result.returncode == 1
    assert "queue.pl: 1 / 3 failed, log is in exp/log/x.*.log" in result.stderr
    assert "exp/log/x.2.log" in result.stderr
    args = recorded(fake_bin)
    script = tmp_path / "exp/log/q/x.sh"
    assert args == ["-cwd", "-j", "y", "-l", "mem_free=4G", "-pe", "smp", "2", "-l", "gpu=1", "-q", "g.q",
                    "-N", "x", "-o", str(tmp_path / "exp/log/q/x.log"), "-t", "1:3", "-tc", "2", str(script)]
    assert os.access(script, os.X_OK)
    for task in (1, 2, 3):
        lines = read_log(tmp_path / f"exp/log/x.{task}.log")
        body = check_log_frame(lines, f"echo task {task} $OMP_NUM_THREADS; [ {task} -ne 2 ]",
                               1 if task == 2 else 0, threads=2)
        assert body == [f"task {task} 2"]
    assert not list((tmp_path / "exp/log/q").glob("x.done.*"))  # markers are cleaned up


def test_queue_pl_defaults_from_config(tmp_path, fake_bin):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/queue.conf").write_text(TEST_QUEUE_CONF)  # picked up without --config
    result = launch(tmp_path, "queue.pl", "log/one.log", "echo", "hello world", env=cluster_env(fake_bin))
    assert result.returncode == 0, result.stderr
    assert recorded(fake_bin)[:5] == ["-cwd", "-j", "y", "-q", "all.q"]  # default gpu=0 rule
    assert "-t" in recorded(fake_bin) and "1:1" in recorded(fake_bin)
    assert check_log_frame(read_log(tmp_path / "log/one.log"), "echo 'hello world'", 0) == ["hello world"]


def test_queue_pl_builtin_config_without_conf_file(tmp_path, fake_bin):
    result = launch(tmp_path, "queue.pl", "--mem", "1G", "JOB=1:2", "log/b.JOB.log", "true",
                    env=cluster_env(fake_bin))
    assert result.returncode == 0, result.stderr
    args = recorded(fake_bin)
    assert args[:8] == ["-v", "PATH", "-cwd", "-S", "/bin/bash", "-j", "y", "-l"]
    assert "mem_free=1G,ram_free=1G" in args


def test_slurm_pl_submits_array_with_limit(tmp_path, fake_bin):
    (tmp_path / "slurm.conf").write_text(TEST_SLURM_CONF)
    result = launch(tmp_path, "slurm.pl", "--config", "slurm.conf", "--mem", "3G", "--num-threads", "4",
                    "--max-jobs-run", "2", "JOB=1:3", "log/s.JOB.log", "echo $OMP_NUM_THREADS; exit $((JOB == 3))",
                    env=cluster_env(fake_bin))
    assert result.returncode == 1
    assert "slurm.pl: 1 / 3 failed, log is in log/s.*.log" in result.stderr and "log/s.3.log" in result.stderr
    assert recorded(fake_bin) == [
        "--export=PATH", "--mem-per-cpu=3G", "--cpus-per-task=4", "-p", "cpu", "--job-name=s",
        f"--output={tmp_path}/log/q/s.%a.log", "--array=1-3%2", str(tmp_path / "log/q/s.sh")]
    assert check_log_frame(read_log(tmp_path / "log/s.3.log"), "echo $OMP_NUM_THREADS; exit $((3 == 3))", 1,
                           threads=4) == ["4"]
    gpu = launch(tmp_path, "slurm.pl", "--config", "slurm.conf", "--gpu", "2", "log/gpu.log", "true",
                 env=cluster_env(fake_bin))
    assert gpu.returncode == 0, gpu.stderr
    assert recorded(fake_bin)[1:4] == ["--gres=gpu:2", "-p", "gpu"]  # replaces the default gpu=0 rule


def test_vanished_task_counts_as_failed(tmp_path, fake_bin):
    (fake_bin / "qstat").write_text(FAKE_QSTAT)
    (fake_bin / "qstat").chmod(0o755)
    env = cluster_env(fake_bin, FAKE_SKIP_TASKS="2", WESPEAKER_QUEUE_CHECK_INTERVAL="0.1",
                      WESPEAKER_QUEUE_GRACE="0.3")
    result = launch(tmp_path, "queue.pl", "JOB=1:3", "log/v.JOB.log", "true", env=env)
    assert result.returncode == 1
    assert "queue.pl: 1 / 3 failed" in result.stderr
    assert "log/v.2.log (no exit status: job 4242 left the scheduler" in result.stderr


def test_submission_failure_is_reported(tmp_path, fake_bin):
    (fake_bin / "qsub").write_text("#!/bin/bash\necho 'qsub: Unknown option -pe' >&2\nexit 2\n")
    result = launch(tmp_path, "queue.pl", "log/x.log", "true", env=cluster_env(fake_bin))
    assert result.returncode == 1
    assert "submission failed (exit 2)" in result.stderr and "Unknown option -pe" in result.stderr


def test_option_not_in_config_is_an_error(tmp_path, fake_bin):
    (tmp_path / "slurm.conf").write_text(TEST_SLURM_CONF)
    result = launch(tmp_path, "slurm.pl", "--config", "slurm.conf", "--time", "1:00", "log/x.log", "true",
                    env=cluster_env(fake_bin))
    assert result.returncode == 1
    assert "--time is not described in slurm.conf" in result.stderr
    assert not (fake_bin / "record").exists()  # nothing submitted


# --- configs ---------------------------------------------------------------------------------

def test_config_rules_exact_value_wins_over_wildcard():
    config = parse_config(TEST_QUEUE_CONF, "test.conf")
    assert config.command == ["qsub", "-cwd", "-j", "y"]
    assert config.option_args({}) == ["-q", "all.q"]
    assert config.option_args({"num_threads": "1", "mem": "2G"}) == ["-l", "mem_free=2G", "-q", "all.q"]
    assert config.option_args({"gpu": "2"}) == ["-l", "gpu=2", "-q", "g.q"]


@pytest.mark.parametrize("text, message", [
    ("command qsub\nfrobnicate x\n", "test.conf:2: expected 'command"),
    ("command qsub\noption mem -l x\n", "test.conf:2: expected"),
    ("command qsub\ndefault gpu=0 -q x\n", "test.conf:2: 'default' takes only NAME=VALUE"),
    ("command qsub 'unclosed\n", "test.conf:1: No closing quotation"),
    ("option mem=* -l m=$0\n", "test.conf: no 'command' line"),
])
def test_config_errors_name_file_and_line(text, message):
    with pytest.raises(LauncherError, match=re.escape(message)):
        parse_config(text, "test.conf")


def test_config_value_without_rule_is_an_error():
    config = parse_config("command sbatch\noption gpu=0\n", "x.conf")
    with pytest.raises(LauncherError, match=r"x.conf: no rule for --gpu 1 \(values with a rule: 0\)"):
        config.option_args({"gpu": "1"})


def test_recipe_configs_and_cmd_sh():
    recipe = REPO / "egs" / "speechocean762" / "v1"
    queue = parse_config((recipe / "conf/queue.conf").read_text(), "queue.conf")
    assert queue.option_args({"mem": "4G", "num_threads": "2", "gpu": "1", "max_jobs_run": "5"}) == [
        "-l", "mem_free=4G,ram_free=4G", "-pe", "smp", "2", "-l", "gpu=1", "-q", "g.q", "-tc", "5"]
    slurm = parse_config((recipe / "conf/slurm.conf").read_text(), "slurm.conf")
    assert slurm.option_args({"mem": "4G", "gpu": "1"}) == ["--mem-per-cpu", "4G", "--gres=gpu:1", "-p", "gpu"]
    result = subprocess.run(["bash", "-c", ". ./cmd.sh && echo \"$train_cmd|$feat_cmd|$extract_cmd\""],
                            cwd=recipe, capture_output=True, text=True)
    assert result.stdout.strip() == "run.pl|run.pl|run.pl"


# --- never waiting forever ---------------------------------------------------------------------

FAKE_SQUEUE_GONE = "#!/bin/bash\nexit 0\n"  # squeue -h prints nothing once the job has left


def use_submit_output(fake_bin: Path, name: str, output: str) -> None:
    """Make the fake submit command print ``output`` instead of its usual line."""
    script = fake_bin / name
    lines = script.read_text().splitlines()
    script.write_text("\n".join(lines[:-1] + [f"echo '{output}'"]) + "\n")


def without_status_commands(fake_bin: Path) -> str:
    """A PATH holding the fake submit commands and the basic tools, but no squeue/qstat."""
    tools = fake_bin.parent / "basic_tools"
    tools.mkdir()
    for name in ("bash", "sed", "date", "hostname", "mkdir", "dirname", "mv", "true", "cat", "sleep"):
        found = subprocess.run(["bash", "-c", f"command -v {name}"], capture_output=True, text=True).stdout.strip()
        if found:
            (tools / name).symlink_to(found)
    (tools / "python3").symlink_to(sys.executable)
    return f"{fake_bin}:{tools}"


@pytest.mark.parametrize("launcher, submit, output, warning", [
    ("slurm.pl", "sbatch", "Submitted batch job 4242", "cannot run the status command 'squeue'"),
    ("slurm.pl", "sbatch", "4242;cluster1", "cannot run the status command 'squeue'"),
    ("queue.pl", "qsub", "Your job-array 4242.1-3:1 (\"job\") has been submitted",
     "cannot run the status command 'qstat'"),
    ("queue.pl", "qsub", "job accepted", "found no job id in the output of qsub ('job accepted')"),
])
def test_without_status_command_the_wait_is_limited_and_heartbeats(tmp_path, fake_bin, launcher, submit,
                                                                  output, warning):
    use_submit_output(fake_bin, submit, output)
    env = cluster_env(fake_bin, FAKE_SKIP_TASKS="2", WESPEAKER_QUEUE_CHECK_INTERVAL="0.1",
                      WESPEAKER_QUEUE_MAX_WAIT="2", WESPEAKER_QUEUE_HEARTBEAT="0.5")
    env["PATH"] = without_status_commands(fake_bin)
    result = launch(tmp_path, launcher, "JOB=1:3", "log/w.JOB.log", "true", env=env, timeout=20)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("warning:") == 1 and warning in result.stderr
    assert "waiting at most 2 s ($WESPEAKER_QUEUE_MAX_WAIT)" in result.stderr
    assert re.search(rf"{launcher}: job [^:]+: 2 / 3 tasks done, 1 pending \(waited \d+ s\)", result.stderr)
    assert f"{launcher}: 1 / 3 failed" in result.stderr
    assert "log/w.2.log (not finished after 2 s ($WESPEAKER_QUEUE_MAX_WAIT)" in result.stderr


@pytest.mark.parametrize("launcher, submit, output, status, status_text", [
    ("slurm.pl", "sbatch", "4242;cluster1", "squeue", FAKE_SQUEUE_GONE),
    ("slurm.pl", "sbatch", "4242", "squeue", FAKE_SQUEUE_GONE),
    ("queue.pl", "qsub", "4242.1-3:1", "qstat", FAKE_QSTAT),
])
def test_terse_submit_output_gives_the_job_id(tmp_path, fake_bin, launcher, submit, output, status, status_text):
    use_submit_output(fake_bin, submit, output)
    (fake_bin / status).write_text(status_text)
    (fake_bin / status).chmod(0o755)
    env = cluster_env(fake_bin, FAKE_SKIP_TASKS="2", WESPEAKER_QUEUE_CHECK_INTERVAL="0.1",
                      WESPEAKER_QUEUE_GRACE="0.3")
    result = launch(tmp_path, launcher, "JOB=1:3", "log/t.JOB.log", "true", env=env, timeout=20)
    assert result.returncode == 1
    assert "warning" not in result.stderr
    assert "log/t.2.log (no exit status: job 4242 left the scheduler" in result.stderr
