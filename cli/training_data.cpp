#include "cli/training_data.h"

#include <algorithm>
#include <filesystem>

#include "data/episodes.h"
#include "tensor/error.h"

namespace ncl::cli {

namespace {

class GeneratedData : public TrainingData {
 public:
  explicit GeneratedData(std::unique_ptr<data::Generator> g) : generator_(std::move(g)) {}
  const data::Generator& generator() const override { return *generator_; }
  const data::Standardizer& standardizer() const override { return identity_; }

 private:
  std::unique_ptr<data::Generator> generator_;
  data::Standardizer identity_;
};

class FileData : public TrainingData {
 public:
  FileData(const data::PointSet& points, const std::string& path, data::EpisodeOptions options)
      : episodes_(points, path, options) {}
  const data::Generator& generator() const override { return episodes_; }
  const data::Standardizer& standardizer() const override { return episodes_.standardizer(); }

 private:
  data::LabeledEpisodes episodes_;
};

}  // namespace

std::unique_ptr<TrainingData> open_training_data(const std::string& source,
                                                 const std::string& label_column,
                                                 const std::string& labels_path,
                                                 const data::EpisodeOptions& episodes,
                                                 const TensorFile* checkpoint) {
  std::vector<std::string> names = data::generator_names();
  if (std::find(names.begin(), names.end(), source) != names.end())
    return std::make_unique<GeneratedData>(data::make_generator(source));
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  NCL_CHECK(std::filesystem::exists(source), "--data '", source,
            "' is neither a generator (", known, ") nor an existing file");
  data::ReadOptions read;
  if (source.ends_with(".npy") || source.ends_with(".NPY")) read.labels_path = labels_path;
  else read.label_column = label_column;
  data::PointSet points = data::read_points(source, read);
  auto out = std::make_unique<FileData>(points, source, episodes);
  if (checkpoint != nullptr) {
    auto s = checkpoint->metadata.find("standardize");
    NCL_CHECK(s != checkpoint->metadata.end() &&
                  s->second == out->standardizer().to_json().dump(),
              source, ": the file's statistics differ from those stored in the checkpoint; "
                      "HINT: resume with the same file the run started with");
  }
  return out;
}

}  // namespace ncl::cli
