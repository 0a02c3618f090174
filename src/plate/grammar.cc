#include "plate/grammar.h"

#include <algorithm>
#include <cctype>
#include <set>

#include <nlohmann/json.hpp>

namespace portcullis::plate {
namespace {

std::string Filter(std::string_view chars, std::string_view alphabet) {
  std::string out;
  for (char c : chars) {
    if (alphabet.find(c) != std::string_view::npos && out.find(c) == std::string::npos) out += c;
  }
  return out;
}

std::string Letters(std::string_view alphabet) {
  std::string out;
  for (char c : alphabet) {
    if (std::isupper(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

std::string Digits(std::string_view alphabet) {
  std::string out;
  for (char c : alphabet) {
    if (std::isdigit(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

}  // namespace

bool LooksLikeDateOrTime(std::string_view raw) {
  auto separator = [](char c) { return c == '-' || c == '/' || c == ':' || c == '.'; };
  int separators = 0, digits = 0, characters = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (separator(raw[i])) {
      // Only a separator inside the text counts: a dash read from a frame's edge is not one.
      // A separator at the end counts: the stamp may be cut there ("2014-06-").
      if (i > 0 && !separator(raw[i - 1]) && (i + 1 == raw.size() || !separator(raw[i + 1]))) {
        ++separators;
      }
      continue;
    }
    ++characters;
    digits += std::isdigit(static_cast<unsigned char>(raw[i])) ? 1 : 0;
  }
  // Digits dominate, though a stamp's "2" or "0" is sometimes read as a "Z" or an "O".
  if (characters < 4 || 4 * digits < 3 * characters) return false;
  if (separators >= 2) return true;
  // A stamp cut short by the detector ("2014-06"): a year-first date keeps its first separator.
  const bool year_first = raw.size() >= 5 && separator(raw[4]) &&
                          (raw.substr(0, 2) == "19" || raw.substr(0, 2) == "20") &&
                          std::isdigit(static_cast<unsigned char>(raw[2])) &&
                          std::isdigit(static_cast<unsigned char>(raw[3]));
  return year_first;
}

Status ExpandPattern(std::string_view pattern, std::string_view alphabet,
                     std::vector<std::string>* sets, std::vector<int>* gaps) {
  sets->clear();
  if (gaps != nullptr) gaps->clear();
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    std::string set;
    if (c == ' ') {
      if (sets->empty() || i + 1 == pattern.size() || pattern[i + 1] == ' ') {
        return Status::InvalidArgument("pattern " + std::string(pattern) +
                                       ": a gap (space) must stand between two characters");
      }
      if (gaps != nullptr) gaps->push_back(static_cast<int>(sets->size()));
      continue;
    }
    if (c == 'L') {
      set = Letters(alphabet);
    } else if (c == 'D') {
      set = Digits(alphabet);
    } else if (c == 'A') {
      set = std::string(alphabet);
    } else if (c == '[') {
      auto close = pattern.find(']', i);
      if (close == std::string_view::npos) {
        return Status::InvalidArgument("unclosed '[' in pattern " + std::string(pattern));
      }
      std::string raw;
      for (std::size_t j = i + 1; j < close; ++j) {
        if (j + 2 < close && pattern[j + 1] == '-') {
          if (pattern[j + 2] < pattern[j]) {
            return Status::InvalidArgument("bad range in pattern " + std::string(pattern));
          }
          for (char r = pattern[j]; r <= pattern[j + 2]; ++r) raw += r;
          j += 2;
        } else {
          raw += pattern[j];
        }
      }
      set = Filter(raw, alphabet);
      i = close;
    } else {
      return Status::InvalidArgument(std::string("unknown symbol '") + c + "' in pattern " +
                                     std::string(pattern) + " (use L, D, A, [..] or a space)");
    }
    if (set.empty()) {
      return Status::InvalidArgument("pattern " + std::string(pattern) +
                                     " has a position no alphabet character can fill");
    }
    sets->push_back(std::move(set));
  }
  if (sets->empty()) return Status::InvalidArgument("empty pattern");
  return Status::Ok();
}

Status RegionGrammar::Parse(std::string_view json_text, const std::string& source,
                            RegionGrammar* out) {
  auto fail = [&](const std::string& what) { return Status::Corruption(source + ": " + what); };
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail("not valid JSON");
  if (!doc.is_object()) return fail("top level must be an object");
  RegionGrammar g;
  try {
    if (!doc.contains("region") || !doc["region"].is_string())
      return fail("missing string 'region'");
    g.region = doc["region"].get<std::string>();
    g.name = doc.value("name", g.region);
    if (!doc.contains("alphabet") || !doc["alphabet"].is_string()) {
      return fail("missing string 'alphabet'");
    }
    g.alphabet = doc["alphabet"].get<std::string>();
    if (g.alphabet.empty()) return fail("'alphabet' is empty");
    for (std::size_t i = 0; i < g.alphabet.size(); ++i) {
      if (g.alphabet.find(g.alphabet[i]) != i) return fail("'alphabet' repeats a character");
    }
    for (char c : g.alphabet) {
      if (!std::isupper(static_cast<unsigned char>(c)) &&
          !std::isdigit(static_cast<unsigned char>(c))) {
        return fail("alphabet may hold only A-Z and 0-9");
      }
    }
    if (doc.contains("substitutions")) {
      if (!doc["substitutions"].is_object()) return fail("'substitutions' must be an object");
      for (const auto& [from, to] : doc["substitutions"].items()) {
        if (from.size() != 1 || !to.is_string() || to.get<std::string>().size() != 1) {
          return fail("substitutions map one character to one character");
        }
        char target = to.get<std::string>()[0];
        if (g.alphabet.find(target) == std::string::npos) {
          return fail("substitution target '" + std::string(1, target) + "' not in alphabet");
        }
        g.substitutions[from[0]] = target;
      }
    }
    if (doc.contains("patterns") && !doc["patterns"].is_array()) {
      return fail("'patterns' must be an array");
    }
    for (const auto& p : doc.value("patterns", nlohmann::json::array())) {
      if (!p.is_object() || !p.contains("pattern") || !p["pattern"].is_string()) {
        return fail("each pattern needs a string 'pattern'");
      }
      PlatePattern pattern;
      pattern.source = p["pattern"].get<std::string>();
      pattern.name = p.value("name", pattern.source);
      pattern.weight = p.value("weight", 1.0);
      if (!(pattern.weight > 0 && pattern.weight <= 1.0)) {
        return fail("pattern " + pattern.name + ": weight must be in (0, 1]");
      }
      Status s = ExpandPattern(pattern.source, g.alphabet, &pattern.sets, &pattern.gaps);
      if (!s.ok()) return fail(s.message());
      g.patterns.push_back(std::move(pattern));
    }
    if (doc.contains("free_form")) {
      const auto& f = doc["free_form"];
      if (!f.is_object()) return fail("'free_form' must be an object");
      g.free_min_length = f.value("min_length", 0);
      g.free_max_length = f.value("max_length", 0);
      g.free_min_digits = f.value("min_digits", 0);
      g.free_min_letters = f.value("min_letters", 0);
      g.free_weight = f.value("weight", 0.0);
      g.free_digits_only_weight = f.value("digits_only_weight", g.free_weight);
      if (g.free_min_length < 1 || g.free_max_length < g.free_min_length ||
          g.free_max_length > 12 || !(g.free_weight > 0 && g.free_weight <= 1.0)) {
        return fail("free_form needs 1 <= min_length <= max_length <= 12 and weight in (0, 1]");
      }
      if (!(g.free_digits_only_weight > 0 && g.free_digits_only_weight <= 1.0)) {
        return fail("free_form digits_only_weight must be in (0, 1]");
      }
    }
    if (g.patterns.empty() && g.free_weight == 0) {
      return fail("a grammar needs at least one entry in 'patterns' or a 'free_form' rule");
    }
    if (doc.contains("confusables")) {
      if (!doc["confusables"].is_array()) return fail("'confusables' must be an array");
      for (const auto& c : doc["confusables"]) {
        if (!c.is_array() || c.size() != 3 || !c[0].is_string() || !c[1].is_string() ||
            !c[2].is_number() || c[0].get<std::string>().size() != 1 ||
            c[1].get<std::string>().size() != 1) {
          return fail("each confusable is [\"A\", \"B\", share]");
        }
        Confusable conf{c[0].get<std::string>()[0], c[1].get<std::string>()[0], c[2].get<float>()};
        if (!(conf.share >= 0 && conf.share <= 1))
          return fail("confusable share must be in [0, 1]");
        g.confusables.push_back(conf);
      }
    }
    g.junk_weight = doc.value("junk_weight", 0.0);
    if (!(g.junk_weight >= 0 && g.junk_weight <= 1.0)) {
      return fail("junk_weight must be in [0, 1]");
    }
    if (doc.contains("plate_box_scale")) {
      const auto& s = doc["plate_box_scale"];
      if (!s.is_array() || s.size() != 2 || !s[0].is_number() || !s[1].is_number()) {
        return fail("plate_box_scale must be [x, y]");
      }
      g.plate_scale_x = s[0].get<float>();
      g.plate_scale_y = s[1].get<float>();
      if (g.plate_scale_x < 0.5f || g.plate_scale_x > 4 || g.plate_scale_y < 0.5f ||
          g.plate_scale_y > 4) {
        return fail("plate_box_scale factors must be in [0.5, 4]");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("wrong type: ") + e.what());
  }
  *out = std::move(g);
  return Status::Ok();
}

Status RegionGrammar::LoadDirectory(Env* env, const std::string& dir,
                                    std::vector<RegionGrammar>* out) {
  out->clear();
  std::vector<std::string> names;
  PORTCULLIS_RETURN_IF_ERROR(env->ListDirectory(dir, &names));
  for (const auto& name : names) {
    if (name.size() < 6 || name.substr(name.size() - 5) != ".json") continue;
    std::string path = dir;
    path += '/';
    path += name;
    std::string text;
    PORTCULLIS_RETURN_IF_ERROR(env->ReadFile(path, 1 << 20, &text));
    RegionGrammar g;
    PORTCULLIS_RETURN_IF_ERROR(Parse(text, path, &g));
    if (g.region != name.substr(0, name.size() - 5)) {
      return Status::Corruption(path + ": 'region' must equal the file name's stem");
    }
    out->push_back(std::move(g));
  }
  if (out->empty()) return Status::NotFound("no region grammars (*.json) in " + dir);
  return Status::Ok();
}

double RegionGrammar::Prior(std::string_view text, std::string* format) const {
  double best = 0;
  std::string best_format;
  for (const auto& p : patterns) {
    if (p.sets.size() != text.size() || p.weight <= best) continue;
    bool match = true;
    for (std::size_t i = 0; i < text.size() && match; ++i) {
      match = p.sets[i].find(text[i]) != std::string::npos;
    }
    if (match) {
      best = p.weight;
      best_format = p.name;
    }
  }
  if (best == 0 && free_weight > 0) {
    auto n = static_cast<int>(text.size());
    int digits = 0, letters = 0;
    bool in_alphabet = true;
    for (char c : text) {
      digits += std::isdigit(static_cast<unsigned char>(c)) ? 1 : 0;
      letters += std::isupper(static_cast<unsigned char>(c)) ? 1 : 0;
      in_alphabet = in_alphabet && alphabet.find(c) != std::string::npos;
    }
    if (in_alphabet && n >= free_min_length && n <= free_max_length && digits >= free_min_digits &&
        letters >= free_min_letters) {
      best = letters == 0 ? free_digits_only_weight : free_weight;
      best_format = "";
    }
  }
  if (format != nullptr) *format = best_format;
  return best;
}

std::vector<int> RegionGrammar::Lengths() const {
  std::set<int> lengths;
  for (const auto& p : patterns) lengths.insert(static_cast<int>(p.sets.size()));
  return {lengths.begin(), lengths.end()};
}

}  // namespace portcullis::plate
