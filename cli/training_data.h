// Where `ncl train` gets its batches: a named generator (mog-k4), or episodes from a labeled
// CSV/NPY file (data/episodes.h) standardised with statistics that go into the checkpoint.
#pragma once

#include <memory>
#include <string>

#include "data/episodes.h"
#include "data/generator.h"
#include "data/standardize.h"
#include "tensor/safetensors.h"

namespace ncl::cli {

class TrainingData {
 public:
  virtual ~TrainingData() = default;
  virtual const data::Generator& generator() const = 0;
  virtual const data::Standardizer& standardizer() const = 0;
};

// `source` is a generator name or a file path (CSV with `label_column`, or NPY features with
// a separate 1-D NPY `labels_path`). For a file, `episodes` says how many classes and points
// each episode holds (models::training_episodes). When resuming, `checkpoint` is the
// run's checkpoint: its stored standardisation must match the file's, or the file changed.
std::unique_ptr<TrainingData> open_training_data(const std::string& source,
                                                 const std::string& label_column,
                                                 const std::string& labels_path,
                                                 const data::EpisodeOptions& episodes,
                                                 const TensorFile* checkpoint);

}  // namespace ncl::cli
