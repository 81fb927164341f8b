// ncl train: trains a model on a generator or on the user's labeled file, with progress on
// stderr, periodic atomic checkpoints, a resumable checkpoint on Ctrl-C, and exact resume.
//
// Everything a run depends on is in its checkpoint: model name and config, the recipe (steps,
// batch, lr, schedule), the data source, the step, Adam's moments and the Rng state. Resuming
// restores all of it, so an interrupted run continued with --resume produces bit-identical
// weights to the run that was never interrupted.
//
// A run whose loss diverges (nn::DivergenceMonitor; also a non-finite loss or gradient) is
// rolled back to its last checkpoint — written only while the loss was healthy — and goes on
// with half the learning rate; the scale and the count are in the checkpoint too.
//
// --eval-data scores the model on held-out datasets (cli/scoring.h) when the run starts and
// every --eval-every steps, without touching the run's state: a run with it trains the same
// bits as one without. --keep-best FILE also saves the best-scoring state as a resumable
// checkpoint; the best score so far is kept in every checkpoint, so a resumed run goes on
// comparing against it.
#include <algorithm>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <set>
#include <sstream>

#include "autograd/functions.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/scoring.h"
#include "cli/training_data.h"
#include "models/registry.h"
#include "nn/checkpoint.h"
#include "nn/divergence.h"
#include "nn/optim.h"
#include "tensor/error.h"
#include "tensor/file_write.h"

namespace ncl::cli {

namespace {

// What --eval-data scores: the first 100 datasets, named in messages by the flag.
ScoringData held_out_defaults() {
  ScoringData d;
  d.flag = "--eval-data";
  d.datasets = 100;
  return d;
}

struct TrainOptions {
  std::string model = "set-transformer", data, loss, out, resume, config = "{}";
  std::string label_column = "-1", labels;
  int64_t steps = 0, batch = 0, checkpoint_every = 1000, until = 0, micro_batch = -1;
  double lr = 0.0, log_every = 5.0;
  uint64_t seed = 0;
  std::string device = "cpu";
  int threads = 0;
  ScoringData eval = held_out_defaults();  // --eval-data
  int64_t eval_every = 0;                  // 0: every checkpoint
  std::string eval_metric = "ari", keep_best;
};

// The first SIGINT or SIGTERM asks for a checkpoint at the end of the step. A second one a
// second or more later stops at once (leaving the last periodic checkpoint); one sooner is the
// same request again (GNU timeout signals the process, then its whole group).
volatile std::sig_atomic_t g_interrupted = 0;
volatile std::sig_atomic_t g_interrupted_at = 0;  // CLOCK_MONOTONIC seconds
extern "C" void on_interrupt(int signal) {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  if (!g_interrupted) {
    g_interrupted = 1;
    g_interrupted_at = std::sig_atomic_t(now.tv_sec);
  } else if (now.tv_sec - g_interrupted_at >= 2) {
    remove_partial_write();
    std::signal(signal, SIG_DFL);
    std::raise(signal);
  }
}

// --config's JSON object; a key given twice is refused (JSON parsers keep the last silently).
nlohmann::json parse_config(const std::string& text) {
  std::vector<std::set<std::string>> keys;  // per open object
  std::string repeated;
  auto watch = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) keys.emplace_back();
    if (event == Event::object_end && !keys.empty()) keys.pop_back();
    if (event == Event::key && !keys.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!keys.back().insert(key).second) repeated = key;
    }
    return true;
  };
  nlohmann::json config = nlohmann::json::parse(text, watch, false);
  if (config.is_discarded() || !config.is_object())
    throw CLI::ValidationError("--config", "must be valid JSON and an object, got '" + text + "'");
  if (!repeated.empty())
    throw CLI::ValidationError("--config", "gives the key '" + repeated + "' twice");
  return config;
}

// Four significant digits, for messages.
std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string rng_state(Rng& rng) {
  std::ostringstream os;
  os << rng.engine();
  return os.str();
}

void set_rng_state(Rng& rng, const std::string& state, const std::string& path) {
  std::istringstream is(state);
  is >> rng.engine();
  NCL_CHECK(!is.fail(), path, ": checkpoint 'rng' metadata is not a generator state");
}

const std::string& require_meta(const TensorFile& f, const std::string& key, const std::string& path) {
  auto it = f.metadata.find(key);
  NCL_CHECK(it != f.metadata.end(), path, ": checkpoint lacks '", key,
            "' metadata, so it cannot be resumed; HINT: only checkpoints written by `ncl train` resume");
  return it->second;
}

// A number stored in checkpoint metadata, or ncl::Error naming the key.
double meta_number(const TensorFile& f, const std::string& key, const std::string& path) {
  return nn::metadata_number(require_meta(f, key, path), key, path);
}

// Restarts as checkpoint metadata: a JSON list of [step, lr] pairs.
std::string restarts_json(const std::vector<std::pair<int64_t, double>>& restarts) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [at, lr] : restarts) j.push_back({at, lr});
  return j.dump();
}

std::vector<std::pair<int64_t, double>> parse_restarts(const TensorFile& f, const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(require_meta(f, "restarts", path), nullptr, false);
  std::vector<std::pair<int64_t, double>> out;
  bool ok = j.is_array();
  for (const auto& pair : ok ? j : nlohmann::json::array()) {
    ok = ok && pair.is_array() && pair.size() == 2 && pair[0].is_number_integer() && pair[1].is_number();
    if (ok) out.emplace_back(pair[0].get<int64_t>(), pair[1].get<double>());
  }
  NCL_CHECK(ok, path, ": checkpoint metadata 'restarts' is not a list of [step, lr] pairs");
  return out;
}

// The generator a model trains on when --data is not given.
std::string default_training_data(const std::string& model) {
  if (model == "ncp") return "crp-mog";
  return model == "dac" ? "mog" : model == "dac-maf" ? "warped-mog" : "mog-k4";
}

// The run's settings: from the flags for a new run, from the checkpoint on --resume.
struct Run {
  std::string model, data, label_column, labels;
  nlohmann::json config;
  models::TrainingRecipe recipe;
  uint64_t seed = 0;
  int64_t step = 0;
  double lr_scale = 1.0;  // halved by every roll-back after a divergence
  int64_t rollbacks = 0;
};

constexpr int64_t kMaxRollbacks = 4;

int run_train(TrainOptions& o, CLI::App& sub) {
  if (o.eval.data.empty())
    for (const char* flag : {"--eval-every", "--eval-datasets", "--eval-metric", "--keep-best"})
      if (sub.count(flag) > 0) throw CLI::ValidationError(flag, "needs --eval-data");
  if (!o.keep_best.empty() && o.keep_best == o.out)
    throw CLI::ValidationError("--keep-best", "must name a file other than --out");
  // --resume may name --out (a run continued in place); nothing else it reads is overwritten,
  // and a place that cannot take the checkpoint is found now, not after the training.
  check_outputs_apart({{"--data", o.data}, {"--labels", o.labels}, {"--eval-data", o.eval.data}},
                      {{"--out", o.out}, {"--keep-best", o.keep_best}});
  check_outputs_apart({{"--resume", o.resume}}, {{"--keep-best", o.keep_best}});
  check_writable(o.out);
  if (!o.keep_best.empty()) check_writable(o.keep_best);
  const OutputLock lock(o.out);
  const int64_t eval_every = o.eval_every > 0 ? o.eval_every : o.checkpoint_every;
  apply_threads(o.threads);
  Run run;
  TensorFile resumed;
  std::unique_ptr<models::ClusteringModel> model;
  Rng rng(o.seed);
  std::unique_ptr<TrainingData> data;
  if (o.resume.empty()) {
    run.model = o.model;
    run.data = o.data.empty() ? default_training_data(o.model) : o.data;
    // Label flags that would be ignored are refused, as `ncl cluster` refuses them.
    const std::vector<std::string> generators = data::generator_names();
    const bool generated =
        std::find(generators.begin(), generators.end(), run.data) != generators.end();
    const bool npy = run.data.ends_with(".npy") || run.data.ends_with(".NPY");
    for (const char* flag : {"--label-column", "--labels"})
      if (generated && sub.count(flag) > 0)
        throw CLI::ValidationError(flag, "is for a training file; '" + run.data +
                                             "' is a generator, whose points carry their labels");
    if (!generated && npy && sub.count("--label-column") > 0)
      throw CLI::ValidationError("--label-column", "is for CSV files; an NPY file's labels come "
                                                   "from --labels");
    if (!generated && !npy && sub.count("--labels") > 0)
      throw CLI::ValidationError("--labels", "is for NPY files; a CSV's labels are a column, "
                                             "named with --label-column");
    run.label_column = o.label_column;
    run.labels = o.labels;
    run.seed = o.seed;
    run.config = parse_config(o.config);
    if (!o.loss.empty()) {
      if (run.model != "dac" && run.model != "dac-maf")
        throw CLI::ValidationError("--loss", "is for the filtering models (dac, dac-maf)");
      run.config["loss"] = o.loss;
    }
    data = open_training_data(run.data, run.label_column, run.labels,
                              models::training_episodes(run.model, run.config), nullptr);
    const int64_t features = data->generator().dim();
    if (run.config.contains("dim_input") && run.config["dim_input"] != features)
      throw CLI::ValidationError("--config", "dim_input comes from the data ('" + run.data +
                                                 "' has " + std::to_string(features) +
                                                 " features); leave it out");
    run.config["dim_input"] = features;
    if (run.model == "set-transformer" && !run.config.contains("clusters"))
      run.config["clusters"] = data->generator().max_clusters();
    model = models::make_model(run.model, run.config, rng);
    run.config = model->config();
    run.recipe = model->recipe();
  } else {
    for (const char* flag :
         {"--model", "--data", "--seed", "--config", "--loss", "--label-column", "--labels"})
      if (sub.count(flag) > 0)
        throw CLI::ValidationError(flag, std::string("comes from the checkpoint when resuming; ") +
                                             "drop it or start a new run without --resume");
    resumed = nn::load_checkpoint(o.resume);
    model = models::load_model(resumed, o.resume);
    const auto& p = o.resume;
    run.model = model->name();
    run.config = model->config();
    run.data = require_meta(resumed, "data", p);
    run.label_column = require_meta(resumed, "label_column", p);
    run.labels = require_meta(resumed, "labels", p);
    const std::string& seed = require_meta(resumed, "seed", p);
    NCL_CHECK(!seed.empty() && seed.find_first_not_of("0123456789") == std::string::npos, p,
              ": checkpoint metadata 'seed' is not a number: '", seed, "'");
    run.seed = std::strtoull(seed.c_str(), nullptr, 10);
    run.step = int64_t(meta_number(resumed, "step", p));
    run.recipe.steps = int64_t(meta_number(resumed, "steps", p));
    run.recipe.batch = int64_t(meta_number(resumed, "batch", p));
    run.recipe.lr = meta_number(resumed, "lr", p);
    run.recipe.decay_at = meta_number(resumed, "decay_at", p);
    run.recipe.clip_norm = meta_number(resumed, "clip_norm", p);
    // Checkpoints from before the cosine schedule existed used the step schedule.
    run.recipe.cosine = resumed.metadata.count("cosine") > 0 && meta_number(resumed, "cosine", p) != 0;
    run.recipe.micro_batch =
        resumed.metadata.count("micro_batch") > 0 ? int64_t(meta_number(resumed, "micro_batch", p)) : 0;
    run.recipe.weight_decay =
        resumed.metadata.count("weight_decay") > 0 ? meta_number(resumed, "weight_decay", p) : 0.0;
    if (resumed.metadata.count("restarts") > 0) run.recipe.restarts = parse_restarts(resumed, p);
    set_rng_state(rng, require_meta(resumed, "rng", p), p);
    if (resumed.metadata.count("lr_scale") > 0) run.lr_scale = meta_number(resumed, "lr_scale", p);
    if (resumed.metadata.count("rollbacks") > 0)
      run.rollbacks = int64_t(meta_number(resumed, "rollbacks", p));
    data = open_training_data(run.data, run.label_column, run.labels,
                              models::training_episodes(run.model, run.config), &resumed);
  }
  for (auto [flag, value] : {std::pair{"--steps", o.steps}, std::pair{"--until", o.until}})
    if (!o.resume.empty() && sub.count(flag) > 0 && value <= run.step)
      throw CLI::ValidationError(flag, "the checkpoint is already at step " +
                                           std::to_string(run.step) + "; " + flag + " counts "
                                           "from the run's start, so ask for more than that");
  if (o.steps > 0) run.recipe.steps = o.steps;
  if (o.batch > 0) run.recipe.batch = o.batch;
  if (o.lr > 0) run.recipe.lr = o.lr;
  // Chunks help on the CPU's caches; a GPU wants the whole batch in each kernel.
  if (o.micro_batch >= 0) run.recipe.micro_batch = o.micro_batch;
  else if (o.resume.empty() && o.device == "cuda") run.recipe.micro_batch = 0;
  NCL_CHECK(data->generator().dim() == model->dim(), "data '", run.data, "' has ",
            data->generator().dim(), " features but the model expects ", model->dim());

  // Weights are initialised (and data drawn) on the CPU, then moved: a CPU run and a GPU run
  // with the same seed start from the same weights and see the same batches.
  model->to(parse_device(o.device));
  nn::AdamOptions adam_options{run.recipe.lr};
  adam_options.weight_decay = run.recipe.weight_decay;  // coupled L2, as torch.optim.Adam
  nn::Adam adam(model->named_parameters(), adam_options);
  if (!o.resume.empty()) nn::load_optimizer(adam, resumed);
  std::vector<int64_t> milestones;
  if (run.recipe.decay_at > 0) milestones.push_back(int64_t(run.recipe.decay_at * run.recipe.steps));
  nn::StepSchedule step_schedule{run.recipe.lr, milestones, 0.1};
  nn::CosineSchedule cosine_schedule{run.recipe.lr, run.recipe.steps};
  auto schedule_lr = [&](int64_t step) {
    if (!run.recipe.restarts.empty()) {
      double lr = run.recipe.lr;
      for (const auto& [at, value] : run.recipe.restarts)
        if (step >= at) lr = value;
      return lr;
    }
    return run.recipe.cosine ? cosine_schedule.lr(step) : step_schedule.lr(step);
  };
  auto lr_at = [&](int64_t step) { return run.lr_scale * schedule_lr(step); };
  nn::DivergenceMonitor monitor;
  if (!o.resume.empty()) monitor.from_metadata(resumed.metadata, o.resume);
  std::string last_good = o.resume;  // the checkpoint a roll-back returns to

  // Held-out datasets, drawn once; a labeled CSV uses the training file's label column.
  std::vector<data::Dataset> held_out;
  if (!o.eval.data.empty()) {
    o.eval.label_column = run.label_column;
    NCL_CHECK(!o.eval.data.ends_with(".npy") && !o.eval.data.ends_with(".NPY"), "--eval-data '",
              o.eval.data, "': an NPY file keeps its labels apart; HINT: a generator name, a "
              "benchmark file from `ncl gen`, or a labeled CSV");
    held_out = load_scoring_datasets(o.eval);
  }
  // The best held-out score so far (--keep-best), carried by checkpoints as 'eval_best'.
  nlohmann::json best;
  if (!o.keep_best.empty() && resumed.metadata.count("eval_best") > 0) {
    nlohmann::json stored = nlohmann::json::parse(resumed.metadata.at("eval_best"), nullptr, false);
    const bool same_score = stored.is_object() && stored.value("metric", "") == o.eval_metric &&
                            stored.value("data", "") == o.eval.data &&
                            stored.value("datasets", int64_t(0)) == int64_t(held_out.size());
    if (same_score && stored.contains("value") && stored["value"].is_number())
      best = stored;  // same score on the same datasets: go on comparing against it
  }

  auto save = [&](int64_t step, const std::string& path) {
    std::map<std::string, std::string> meta{
        {"model", run.model},
        {"config", run.config.dump()},
        {"data", run.data},
        {"label_column", run.label_column},
        {"labels", run.labels},
        {"seed", std::to_string(run.seed)},
        {"step", std::to_string(step)},
        {"steps", std::to_string(run.recipe.steps)},
        {"batch", std::to_string(run.recipe.batch)},
        {"lr", nn::exact_decimal(run.recipe.lr)},
        {"decay_at", nn::exact_decimal(run.recipe.decay_at)},
        {"clip_norm", nn::exact_decimal(run.recipe.clip_norm)},
        {"cosine", run.recipe.cosine ? "1" : "0"},
        {"micro_batch", std::to_string(run.recipe.micro_batch)},
        {"weight_decay", nn::exact_decimal(run.recipe.weight_decay)},
        {"restarts", restarts_json(run.recipe.restarts)},
        {"rng", rng_state(rng)},
        {"lr_scale", nn::exact_decimal(run.lr_scale)},
        {"rollbacks", std::to_string(run.rollbacks)},
        {"command", command_line()}};
    monitor.to_metadata(meta);
    if (!data->standardizer().identity()) meta["standardize"] = data->standardizer().to_json().dump();
    if (!best.is_null())
      meta["eval_best"] = best.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    nn::save_checkpoint(path, *model, &adam, meta);
    if (path == o.out) last_good = o.out;
  };

  // Returns the step to continue from: the last good checkpoint's, with the lr halved.
  auto roll_back = [&](int64_t step, const std::string& why) {
    NCL_CHECK(!last_good.empty(), why, " at step ", step,
              ", before this run's first checkpoint; HINT: try a lower --lr");
    NCL_CHECK(run.rollbacks < kMaxRollbacks, why, " at step ", step, " after ", run.rollbacks,
              " roll-backs; the last good checkpoint is ", last_good, "; HINT: try a lower --lr");
    TensorFile good = nn::load_checkpoint(last_good);
    nn::load_parameters(*model, good);
    nn::load_optimizer(adam, good);
    set_rng_state(rng, require_meta(good, "rng", last_good), last_good);
    monitor.from_metadata(good.metadata, last_good);
    const int64_t back = int64_t(meta_number(good, "step", last_good));
    ++run.rollbacks;
    run.lr_scale *= 0.5;
    std::fprintf(stderr, "step %lld: %s; rolled back to step %lld (%s) with the lr halved (x%g of the schedule)\n",
                 (long long)step, why.c_str(), (long long)back, last_good.c_str(), run.lr_scale);
    return back;
  };

  // Scores the model on the held-out datasets and prints one line; with --keep-best, saves a
  // new best. Reads the model only: the run's weights, Adam state and Rng are untouched.
  using Clock = std::chrono::steady_clock;
  auto validate = [&](int64_t step) {
    const auto began = Clock::now();
    nlohmann::json j = score_model(*model, data->standardizer(), held_out, o.eval, {});
    const double seconds = std::chrono::duration<double>(Clock::now() - began).count();
    NCL_CHECK(j.contains(o.eval_metric), "--eval-metric ", o.eval_metric, ": ", run.model,
              " does not report it on ", o.eval.data, "; HINT: ari, nmi, ami and k_mae are always there");
    std::string line;
    char buf[64];
    for (const char* key : {"ari", "nmi", "ami", "k_mae", "ll", "ll1", "oracle_ll", "nll"})
      if (j.contains(key)) {
        std::snprintf(buf, sizeof buf, "  %s %.4f", key, j[key].get<double>());
        line += buf;
      }
    char took[32];
    if (seconds < 60) std::snprintf(took, sizeof took, "%.1fs", seconds);
    else std::snprintf(took, sizeof took, "%s", format_duration(seconds).c_str());
    std::fprintf(stderr, "eval at step %lld (%s, %lld datasets, %s):%s\n", (long long)step,
                 o.eval.data.c_str(), (long long)held_out.size(), took, line.c_str());
    if (o.keep_best.empty()) return;
    const double value = j[o.eval_metric].get<double>();
    const bool better = best.is_null() || (higher_is_better(o.eval_metric)
                                               ? value > best["value"].get<double>()
                                               : value < best["value"].get<double>());
    if (!better || !std::isfinite(value)) return;
    best = {{"metric", o.eval_metric}, {"data", o.eval.data}, {"datasets", held_out.size()},
            {"value", value}, {"step", step}};
    save(step, o.keep_best);
    std::fprintf(stderr, "eval at step %lld: best %s so far, saved %s\n", (long long)step,
                 o.eval_metric.c_str(), o.keep_best.c_str());
  };

  std::fprintf(stderr, "train %s on %s: %lld parameters, steps %lld..%lld, batch %lld, lr %g\n",
               run.model.c_str(), run.data.c_str(), (long long)model->parameter_count(),
               (long long)run.step, (long long)run.recipe.steps, (long long)run.recipe.batch,
               run.recipe.lr);
  g_interrupted = 0;
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  if (!held_out.empty()) validate(run.step);
  auto start = Clock::now(), last_log = start;
  int64_t steps_run = 0, logged_steps = 0;
  double loss_sum = 0.0, variance_sum = 0.0;  // variance: NCP's across orderings
  const int64_t stop = o.until > 0 ? std::min(o.until, run.recipe.steps) : run.recipe.steps;
  for (int64_t step = run.step; step < stop; ++step) {
    for (const auto& restart : run.recipe.restarts)
      if (restart.first == step) adam.restart();
    adam.set_lr(lr_at(step));
    data::Batch batch = data->generator().sample(run.recipe.batch, rng);
    adam.zero_grad();
    const models::StepReport report =
        model->backward(batch, run.recipe.micro_batch, rng);
    const double value = report.loss;
    // A non-finite gradient would poison the weights (and the next checkpoint): check first.
    double norm = nn::grad_norm(model->parameters());
    std::string trouble;
    if (!std::isfinite(value)) trouble = "the loss is " + short_number(value);
    else if (!std::isfinite(norm)) trouble = "the gradient norm is " + short_number(norm);
    else if (monitor.update(value))
      trouble = "the loss diverged (recent average " + short_number(monitor.fast()) + ", best " +
                short_number(monitor.best()) + ")";
    if (!trouble.empty()) {
      step = roll_back(step, trouble) - 1;  // the loop's ++step continues from there
      continue;
    }
    if (run.recipe.clip_norm > 0 && norm > run.recipe.clip_norm)
      nn::clip_grad_norm(model->parameters(), run.recipe.clip_norm);
    adam.step();
    loss_sum += value;
    variance_sum += report.order_variance.value_or(0.0);
    ++logged_steps;
    ++steps_run;
    const int64_t done = step + 1;
    auto now = Clock::now();
    double since_log = std::chrono::duration<double>(now - last_log).count();
    if (since_log >= o.log_every || done == stop) {
      double elapsed = std::chrono::duration<double>(now - start).count();
      double rate = double(steps_run) / elapsed;
      char variance[48] = "";
      if (report.order_variance)
        std::snprintf(variance, sizeof variance, "  order-var %.2e", variance_sum / double(logged_steps));
      std::fprintf(stderr, "step %lld/%lld  loss %.4f%s  lr %.1e  %.2f steps/s  ETA %s\n",
                   (long long)done, (long long)run.recipe.steps, loss_sum / double(logged_steps),
                   variance, adam.lr(), rate,
                   format_duration(double(run.recipe.steps - done) / rate).c_str());
      last_log = now;
      loss_sum = variance_sum = 0.0;
      logged_steps = 0;
    }
    if (g_interrupted) {
      save(done, o.out);
      std::fprintf(stderr, "interrupted: saved %s at step %lld; continue with `ncl train --resume %s "
                           "--out %s`\n", o.out.c_str(), (long long)done, o.out.c_str(), o.out.c_str());
      return 130;
    }
    // Before the checkpoint, so that it carries the new best score.
    if (!held_out.empty() && (done % eval_every == 0 || done == stop)) validate(done);
    if (done == stop) {
      save(done, o.out);
    } else if (done % o.checkpoint_every == 0) {
      // Only healthy states become checkpoints, so a roll-back lands on one.
      if (monitor.healthy()) save(done, o.out);
      else std::fprintf(stderr, "step %lld: no checkpoint while the loss is above its best (score %.1f)\n",
                        (long long)done, monitor.score());
    }
  }
  end_on_signals();
  if (run.step >= stop) save(run.step, o.out);
  std::fprintf(stderr, "saved %s (step %lld of %lld)\n", o.out.c_str(),
               (long long)std::max(stop, run.step), (long long)run.recipe.steps);
  return 0;
}

}  // namespace

Runner add_train(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* sub = app.add_subcommand("train", "Train a clustering model; writes a checkpoint");
  sub->add_option("--model", o->model,
                  "model to train: set-transformer (default), dac, dac-maf or ncp")
      ->check(CLI::IsMember(models::model_names()));
  sub->add_option("--data", o->data,
                  "training data: a generator (" + generator_list() +
                      ") or a labeled CSV/NPY file (default: mog-k4 for set-transformer, mog for "
                      "dac, warped-mog for dac-maf, crp-mog for ncp)");
  sub->add_option("--loss", o->loss,
                  "filtering loss of dac/dac-maf: min (default) or anc (anchored)")
      ->check(CLI::IsMember({"min", "anc"}));
  sub->add_option("--label-column", o->label_column,
                  "label column of a CSV training file: a header name or 0-based index (-1 = last)");
  sub->add_option("--labels", o->labels, "labels of an NPY training file: a 1-D integer .npy");
  sub->add_option("--steps", o->steps, "training steps (default: the model's recipe)")
      ->check(positive_number());
  sub->add_option("--batch", o->batch, "datasets per step (default: the model's recipe)")
      ->check(positive_number());
  sub->add_option("--lr", o->lr, "Adam learning rate (default: the model's recipe)")
      ->check(positive_number());
  sub->add_option("--micro-batch", o->micro_batch,
                  "datasets per forward/backward, gradients summed over the step's batch (the "
                  "same update; on the CPU chunks run on the threads at once). 0: the whole "
                  "batch. Default: the model's recipe on the CPU (dac 2, set-transformer 5, "
                  "ncp 32), 0 on cuda")
      ->check(non_negative_number());
  sub->add_option("--seed", o->seed, "seed for initial weights and data (default 0)")
      ->check(seed_number());
  sub->add_option("--config", o->config, "model configuration overrides as JSON, e.g. '{\"dim\": 64}'");
  add_device_options(sub, o->device, o->threads);
  sub->add_option("--out", o->out, "checkpoint to write (atomically, every --checkpoint-every steps)")
      ->required();
  sub->add_option("--resume", o->resume, "continue the run saved in this checkpoint");
  sub->add_option("--until", o->until, "stop after this step with a resumable checkpoint (the "
                                       "schedule still follows --steps)")
      ->check(positive_number());
  sub->add_option("--checkpoint-every", o->checkpoint_every, "steps between checkpoints (default 1000)")
      ->check(positive_number());
  sub->add_option("--log-every", o->log_every, "seconds between progress lines (default 5)")
      ->check(non_negative_number());
  sub->add_option("--eval-data", o->eval.data,
                  "held-out data scored at the start and every --eval-every steps: a generator "
                  "name (its benchmark of seed 0), a benchmark file from `ncl gen`, or a labeled "
                  "CSV (the training file's --label-column)");
  sub->add_option("--eval-datasets", o->eval.datasets,
                  "score the first M held-out datasets (default 100)")
      ->check(whole_number(1, kMaxDatasets));
  sub->add_option("--eval-every", o->eval_every, "steps between held-out scores (default: --checkpoint-every)")
      ->check(positive_number());
  sub->add_option("--eval-metric", o->eval_metric,
                  "the score --keep-best compares: ari (default), nmi, ami, k_mae (lower is "
                  "better), ll, ll1 (set-transformer) or nll (ncp; lower is better)")
      ->check(CLI::IsMember({"ari", "nmi", "ami", "k_mae", "ll", "ll1", "nll"}));
  sub->add_option("--keep-best", o->keep_best,
                  "also save the best-scoring state to this file (a resumable checkpoint)");
  return [o, sub, &app]() {
    (void)app;
    return run_train(*o, *sub);
  };
}

}  // namespace ncl::cli
