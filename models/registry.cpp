#include "models/registry.h"

#include "models/set_transformer.h"
#include "nn/checkpoint.h"
#include "tensor/error.h"

namespace ncl::models {

std::vector<std::string> model_names() { return {"set-transformer"}; }

std::unique_ptr<ClusteringModel> make_model(const std::string& name, const nlohmann::json& config,
                                            Rng& rng) {
  if (name == "set-transformer")
    return std::make_unique<SetTransformer>(SetTransformerConfig::from_json(config), rng);
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  NCL_CHECK(false, "unknown model '", name, "' (known: ", known, ")");
  return nullptr;
}

std::unique_ptr<ClusteringModel> load_model(const TensorFile& checkpoint, const std::string& path) {
  auto name = checkpoint.metadata.find("model");
  auto config = checkpoint.metadata.find("config");
  NCL_CHECK(name != checkpoint.metadata.end() && config != checkpoint.metadata.end(), path,
            ": checkpoint has no 'model' and 'config' metadata; HINT: it was not written by "
            "`ncl train`");
  nlohmann::json parsed = nlohmann::json::parse(config->second, nullptr, false);
  NCL_CHECK(!parsed.is_discarded(), path, ": checkpoint 'config' metadata is not valid JSON");
  Rng rng(0);  // initial values are overwritten by the checkpoint
  std::unique_ptr<ClusteringModel> model = make_model(name->second, parsed, rng);
  nn::load_parameters(*model, checkpoint);
  return model;
}

}  // namespace ncl::models
