// The one place that maps command-line model names to constructors.
//
//   make_model("set-transformer", config, rng)  builds a fresh model; config keys that are
//   missing keep the model's defaults, so `{"dim_input": 3}` is a valid config.
// Checkpoints store the name (metadata "model") and the full config (metadata "config"), so
// load_model() rebuilds exactly the network that was saved.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/episodes.h"
#include "models/model.h"
#include "tensor/safetensors.h"

namespace ncl::models {

std::vector<std::string> model_names();

// ncl::Error listing the known names when `name` is not one of them.
std::unique_ptr<ClusteringModel> make_model(const std::string& name, const nlohmann::json& config,
                                            Rng& rng);

// Training from a labeled file: how many classes and points each episode of model `name`
// (with `config`) holds — the Set Transformer's fixed K, DAC's 1..4 clusters.
data::EpisodeOptions training_episodes(const std::string& name, const nlohmann::json& config);

// Rebuilds the model a checkpoint holds (metadata "model", "config") and loads its parameters.
std::unique_ptr<ClusteringModel> load_model(const TensorFile& checkpoint, const std::string& path);

}  // namespace ncl::models
