#include <cstdio>
#include <filesystem>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include "portcullis/face.h"
using namespace portcullis::face;
int main() {
  std::unique_ptr<FaceEngine> e;
  auto s = FaceEngine::Open({}, &e);
  if (!s.ok()) { std::printf("%s\n", s.ToString().c_str()); return 1; }
  std::vector<std::pair<std::string, FaceTemplate>> t;
  for (auto& d : std::filesystem::directory_iterator("/usr/share/doc/libdlib19.1/examples/johns")) {
    for (auto& f : std::filesystem::directory_iterator(d.path())) {
      cv::Mat m = cv::imread(f.path().string());
      FaceTemplate x; s = e->EmbedChip(m, &x);
      FaceTemplate y; FaceCapture c; auto s2 = e->Enrol(m, &y, &c);
      std::printf("%s chip-vs-enrol %s dist=%.3f eye=%.1f sharp=%.1f yaw=%.1f pitch=%.1f roll=%.1f issue=%s\n", f.path().filename().c_str(), s2.ToString().c_str(), s2.ok()? Distance(x,y):-1.f, c.inter_eye_pixels, c.sharpness, c.yaw_degrees, c.pitch_degrees, c.roll_degrees, QualityIssueName(c.issue));
      t.push_back({d.path().filename().string(), x});
    }
  }
  double same=0, diff=0, smax=0, dmin=9; int ns=0, nd=0;
  for (size_t i=0;i<t.size();++i) for (size_t j=i+1;j<t.size();++j){ double d=Distance(t[i].second,t[j].second); if(t[i].first==t[j].first){same+=d;ns++;smax=std::max(smax,d);} else {diff+=d;nd++;dmin=std::min(dmin,d);} }
  std::printf("same mean %.3f max %.3f (%d)  diff mean %.3f min %.3f (%d)\n", same/ns, smax, ns, diff/nd, dmin, nd);
  for (int i=0;i<8;++i) std::printf("%.5f ", t[0].second.values()[i]); std::printf("\n");
}
