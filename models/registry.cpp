#include "models/registry.h"

#include "models/dac.h"
#include "models/ncp.h"
#include "models/set_transformer.h"
#include "nn/checkpoint.h"
#include "tensor/error.h"

namespace ncl::models {

std::vector<std::string> model_names() { return {"set-transformer", "dac", "dac-maf", "ncp"}; }

namespace {

// The config with the density the model name implies ("dac" ⇒ gaussian, "dac-maf" ⇒ maf).
nlohmann::json dac_config(const std::string& name, nlohmann::json config) {
  const std::string density = name == "dac-maf" ? "maf" : "gaussian";
  NCL_CHECK(!config.contains("density") || config["density"] == density, "model '", name,
            "' has density \"", density, "\", not ", config["density"].dump());
  config["density"] = density;
  return config;
}

}  // namespace

data::EpisodeOptions training_episodes(const std::string& name, const nlohmann::json& config) {
  if (name == "dac" || name == "dac-maf") return Dac::episodes();
  if (name == "ncp") return Ncp::episodes();
  data::EpisodeOptions e;  // the Set Transformer: exactly K classes, N in [300, 600)
  e.clusters_min = e.clusters_max = config.value("clusters", int64_t(4));
  e.points_min = 300;
  e.points_max = 599;
  return e;
}

std::unique_ptr<ClusteringModel> make_model(const std::string& name, const nlohmann::json& config,
                                            Rng& rng) try {
  if (name == "set-transformer")
    return std::make_unique<SetTransformer>(SetTransformerConfig::from_json(config), rng);
  if (name == "dac" || name == "dac-maf")
    return std::make_unique<Dac>(DacConfig::from_json(dac_config(name, config)), rng);
  if (name == "ncp") return std::make_unique<Ncp>(NcpConfig::from_json(config), rng);
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  NCL_CHECK(false, "unknown model '", name, "' (known: ", known, ")");
  return nullptr;
} catch (const nlohmann::json::exception& e) {
  // A value of the wrong type ({"dim": "64"}): the JSON library's own words, without its code.
  const std::string what = e.what();
  throw Error(detail::str("model '", name, "': a config value has the wrong type (",
                          what.substr(what.find(']') + 2), ")"));
}

std::unique_ptr<ClusteringModel> load_model(const TensorFile& checkpoint, const std::string& path) {
  auto name = checkpoint.metadata.find("model");
  auto config = checkpoint.metadata.find("config");
  NCL_CHECK(name != checkpoint.metadata.end() && config != checkpoint.metadata.end(), path,
            ": checkpoint has no 'model' and 'config' metadata; HINT: it was not written by "
            "`ncl train`");
  nlohmann::json parsed = nlohmann::json::parse(config->second, nullptr, false);
  NCL_CHECK(!parsed.is_discarded() && parsed.is_object(), path,
            ": checkpoint 'config' metadata is not a JSON object");
  Rng rng(0);  // initial values are overwritten by the checkpoint
  std::unique_ptr<ClusteringModel> model;
  try {
    model = make_model(name->second, parsed, rng);
  } catch (const Error& e) {
    throw Error(detail::str(path, ": checkpoint 'config': ", e.message()));
  }
  nn::load_parameters(*model, checkpoint);
  return model;
}

}  // namespace ncl::models
