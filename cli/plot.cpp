#include "cli/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tensor/error.h"

namespace ncl::cli {

namespace {

// Twelve distinguishable colours (cluster l uses colour l mod 12).
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a"};

std::string fmt(const char* format, double a, double b = 0, double c = 0, double d = 0) {
  char buf[160];
  std::snprintf(buf, sizeof buf, format, a, b, c, d);
  return buf;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : std::string(1, c);
  return out;
}

// Marching squares: the segments where the grid values (G × G, row j = y) cross `level`, as
// SVG path commands in picture coordinates (x of column i = X(i), y of row j = Y(j)).
template <typename ToX, typename ToY>
std::string contour_path(const std::vector<double>& grid, int G, double level, ToX X, ToY Y) {
  std::string path;
  auto value = [&](int i, int j) { return grid[size_t(j) * G + i]; };
  for (int j = 0; j + 1 < G; ++j)
    for (int i = 0; i + 1 < G; ++i) {
      // The cell's corners in order around it, and the crossing on each edge that has one.
      const int ci[4] = {i, i + 1, i + 1, i}, cj[4] = {j, j, j + 1, j + 1};
      double px[4], py[4];
      int crossings = 0;
      for (int e = 0; e < 4; ++e) {
        const int a = e, b = (e + 1) % 4;
        const double va = value(ci[a], cj[a]), vb = value(ci[b], cj[b]);
        if ((va >= level) == (vb >= level)) continue;
        const double t = (level - va) / (vb - va);
        px[crossings] = ci[a] + t * (ci[b] - ci[a]);
        py[crossings] = cj[a] + t * (cj[b] - cj[a]);
        ++crossings;
      }
      for (int c = 0; c + 1 < crossings; c += 2)
        path += fmt("M%.1f %.1f", X(px[c]), Y(py[c])) + fmt("L%.1f %.1f", X(px[c + 1]), Y(py[c + 1]));
    }
  return path;
}

}  // namespace

std::string render_svg(const std::vector<double>& points, int64_t dim, const std::vector<int>& labels,
                       const std::optional<data::GaussianMixture>& components,
                       const std::string& title, const LogDensity& log_density) {
  NCL_CHECK(dim >= 2, "--plot draws the first two features; these points have only ", dim);
  const int64_t N = int64_t(points.size()) / dim;
  const double size = 640.0, margin = 40.0;
  double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
  for (int64_t n = 0; n < N; ++n)
    for (int a = 0; a < 2; ++a) {
      lo[a] = std::min(lo[a], points[n * dim + a]);
      hi[a] = std::max(hi[a], points[n * dim + a]);
    }
  // The fitted components' 2σ ellipses are in the picture too (one point, or identical points,
  // would otherwise give a span of nothing and put them billions of pixels away).
  if (components)
    for (int64_t k = 0; k < components->clusters(); ++k)
      for (int a = 0; a < 2; ++a) {
        const double mean = components->means[k * components->dim + a];
        const double reach = 2.0 * components->stddevs[k * components->dim + a];
        lo[a] = std::min(lo[a], mean - reach);
        hi[a] = std::max(hi[a], mean + reach);
      }
  // One scale for both axes, so circles stay circles.
  double span = std::max({hi[0] - lo[0], hi[1] - lo[1], 1e-9}) * 1.1;
  double cx = (lo[0] + hi[0]) / 2, cy = (lo[1] + hi[1]) / 2, scale = (size - 2 * margin) / span;
  auto X = [&](double x) { return size / 2 + (x - cx) * scale; };
  auto Y = [&](double y) { return size / 2 - (y - cy) * scale; };

  std::string svg = fmt("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
                        "viewBox=\"0 0 %g %g\">\n", size, size, size, size);
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"12\" y=\"24\" font-family=\"sans-serif\" font-size=\"15\">" + xml_escape(title) + "</text>\n";
  for (int64_t n = 0; n < N; ++n)
    svg += fmt("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill-opacity=\"0.75\" ", X(points[n * dim]),
               Y(points[n * dim + 1])) +
           "fill=\"" + kPalette[labels[n] % 12] + "\"/>\n";
  if (log_density && dim == 2) {
    // The density on a G × G grid over the picture, then three contour levels below its top.
    const int G = 96;
    const double half = (size / 2) / scale;  // data units from the centre to the picture's edge
    auto gx = [&](double i) { return cx - half + 2 * half * i / (G - 1); };
    auto gy = [&](double j) { return cy - half + 2 * half * j / (G - 1); };
    std::vector<double> at;
    for (int j = 0; j < G; ++j)
      for (int i = 0; i < G; ++i) at.insert(at.end(), {gx(i), gy(j)});
    std::vector<double> grid = log_density(at);
    double top = *std::max_element(grid.begin(), grid.end());
    for (double below : {1.0, 3.0, 6.0})
      svg += "<path fill=\"none\" stroke=\"#444\" stroke-width=\"1\" stroke-opacity=\"" +
             fmt("%.2f", below == 1.0 ? 0.9 : below == 3.0 ? 0.6 : 0.35) + "\" d=\"" +
             contour_path(grid, G, top - below, [&](double i) { return X(gx(i)); },
                          [&](double j) { return Y(gy(j)); }) +
             "\"/>\n";
  }
  if (components) {
    const int64_t D = components->dim;
    for (int64_t k = 0; k < components->clusters(); ++k) {
      double mx = components->means[k * D], my = components->means[k * D + 1];
      double sx = components->stddevs[k * D], sy = components->stddevs[k * D + 1];
      std::string colour = kPalette[k % 12];
      for (double r : {1.0, 2.0})
        svg += fmt("<ellipse cx=\"%.1f\" cy=\"%.1f\" rx=\"%.1f\" ry=\"%.1f\" fill=\"none\" ", X(mx),
                   Y(my), r * sx * scale, r * sy * scale) +
               "stroke=\"" + colour + "\" stroke-width=\"" + (r == 1.0 ? "2" : "1") + "\"/>\n";
      svg += fmt("<path d=\"M%.1f %.1f l10 10 m0 -10 l-10 10\" stroke=\"black\" stroke-width=\"2\"/>\n",
                 X(mx) - 5, Y(my) - 5);
      svg += fmt("<text x=\"%.1f\" y=\"%.1f\" font-family=\"sans-serif\" font-size=\"12\">", X(mx) + 8,
                 Y(my) - 8) +
             fmt("π=%.2f</text>\n", components->weights[k]);
    }
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace ncl::cli
