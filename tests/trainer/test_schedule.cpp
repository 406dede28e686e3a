#include <gtest/gtest.h>

#include <cmath>

#include "test_util.h"
#include "trainer/config.h"
#include "trainer/schedule.h"
#include "trainer/step.h"

namespace tern {

TEST(Schedule, WarmupThenInverseSqrt) {
  OptimConfig o;
  o.lr = 1e-3, o.warmup_steps = 100, o.schedule = "inverse_sqrt";
  TrainLoopConfig t;
  t.valid_metric = ValidMetric::kLoss;
  TrainingSchedule s(o, t);
  EXPECT_DOUBLE_EQ(s.lr(1), 1e-5);
  EXPECT_DOUBLE_EQ(s.lr(50), 5e-4);
  EXPECT_DOUBLE_EQ(s.lr(100), 1e-3);
  EXPECT_DOUBLE_EQ(s.lr(400), 5e-4);  // 1e-3 * sqrt(100 / 400)
  o.min_lr = 6e-4;
  EXPECT_DOUBLE_EQ(s.lr(400), 6e-4);
}

TEST(Schedule, ConstantAndPlateauDecay) {
  OptimConfig o;
  o.lr = 0.1, o.warmup_steps = 0, o.schedule = "plateau", o.plateau_factor = 0.5, o.plateau_patience = 2;
  TrainLoopConfig t;
  t.valid_metric = ValidMetric::kLoss;
  TrainingSchedule s(o, t);
  EXPECT_DOUBLE_EQ(s.lr(7), 0.1);
  EXPECT_TRUE(s.record_validation(3.0));
  EXPECT_FALSE(s.record_validation(3.5));
  EXPECT_DOUBLE_EQ(s.lr(8), 0.1);  // one bad validation: patience 2 not reached
  EXPECT_FALSE(s.record_validation(3.2));
  EXPECT_DOUBLE_EQ(s.lr(9), 0.05);
  EXPECT_TRUE(s.record_validation(2.0));  // improvement resets the count, keeps the decay
  EXPECT_FALSE(s.record_validation(2.5));
  EXPECT_DOUBLE_EQ(s.lr(10), 0.05);
  o.schedule = "constant";
  EXPECT_DOUBLE_EQ(TrainingSchedule(o, t).lr(1000), 0.1);
}

TEST(Schedule, WhenToValidateSaveAndStop) {
  OptimConfig o;
  TrainLoopConfig t;
  t.valid_metric = ValidMetric::kLoss;
  t.max_steps = 100, t.valid_every = 30, t.save_every = 40, t.max_minutes = 5;
  TrainingSchedule s(o, t);
  auto a = s.after_step(30, 0);
  EXPECT_TRUE(a.validate && !a.save && !a.stop);
  a = s.after_step(40, 0);
  EXPECT_TRUE(!a.validate && a.save && !a.stop);
  a = s.after_step(100, 0);
  EXPECT_TRUE(a.validate && a.stop);  // a stop always validates
  a = s.after_step(41, 5.0);
  EXPECT_TRUE(a.stop && a.validate);  // wall-time limit
  t.valid_every = 0, t.save_every = 0;
  a = s.after_step(60, 0);
  EXPECT_TRUE(!a.validate && !a.save && !a.stop);
}

TEST(Schedule, EarlyStoppingAndStateRoundTrip) {
  OptimConfig o;
  o.schedule = "plateau", o.plateau_patience = 3;
  TrainLoopConfig t;
  t.valid_metric = ValidMetric::kLoss;
  t.early_stopping = 2;
  TrainingSchedule s(o, t);
  EXPECT_FALSE(s.best_score());
  s.record_validation(1.0);
  s.record_validation(1.5);
  EXPECT_FALSE(s.should_stop_early());
  s.record_validation(1.2);
  EXPECT_TRUE(s.should_stop_early());
  nlohmann::json meta;
  s.save(meta);
  TrainingSchedule r(o, t);
  r.load(meta);
  EXPECT_EQ(r.best_score(), 1.0);
  EXPECT_EQ(r.validations_without_improvement(), 2);
  EXPECT_TRUE(r.should_stop_early());
  r.record_validation(2.0);  // the third bad validation decays on the restored count
  EXPECT_DOUBLE_EQ(r.lr(5000), s.lr(5000) * o.plateau_factor);
  TrainingSchedule fresh(o, t);
  nlohmann::json none;
  fresh.save(none);
  EXPECT_TRUE(none["best_valid_score"].is_null());
  r.load(none);
  EXPECT_FALSE(r.best_score());
  EXPECT_FALSE(r.record_final_validation(std::nan("")));
  EXPECT_TRUE(r.record_final_validation(0.5));
  EXPECT_EQ(r.validations_without_improvement(), 0);
}

TEST(Schedule, BleuIsHigherIsBetterAndAMetricChangeStartsOver) {
  OptimConfig o;
  TrainLoopConfig t;
  t.valid_metric = ValidMetric::kBleu, t.early_stopping = 2;
  TrainingSchedule s(o, t);
  EXPECT_TRUE(s.record_validation(10.0));
  EXPECT_FALSE(s.record_validation(9.0));
  EXPECT_TRUE(s.record_validation(12.5));
  EXPECT_EQ(s.best_score(), 12.5);
  nlohmann::json meta;
  s.save(meta);
  EXPECT_EQ(meta["valid_metric"], "bleu");
  TrainingSchedule same(o, t);
  EXPECT_TRUE(same.load(meta));
  EXPECT_EQ(same.best_score(), 12.5);
  TrainLoopConfig by_loss = t;
  by_loss.valid_metric = ValidMetric::kLoss;
  TrainingSchedule other(o, by_loss);
  EXPECT_FALSE(other.load(meta));  // a BLEU is no loss: the best score starts over
  EXPECT_FALSE(other.best_score());
  EXPECT_TRUE(other.record_validation(3.0));
  // Metadata of tern before valid_metric: best_valid_loss, -1 for none.
  nlohmann::json legacy = {
      {"best_valid_loss", 2.5}, {"validations_without_improvement", 1}, {"plateau_scale", 1.0}, {"bad_validations", 0}};
  TrainingSchedule old(o, by_loss);
  EXPECT_TRUE(old.load(legacy));
  EXPECT_EQ(old.best_score(), 2.5);
  EXPECT_EQ(old.validations_without_improvement(), 1);
}

}  // namespace tern

namespace tern {

TEST(Schedule, WarmupThenCosineToMinLr) {
  OptimConfig o;
  o.lr = 1e-3, o.min_lr = 1e-4, o.warmup_steps = 100, o.schedule = LrSchedule::kCosine;
  TrainLoopConfig t;
  t.valid_metric = ValidMetric::kLoss;
  t.max_steps = 1100;
  TrainingSchedule s(o, t);
  EXPECT_DOUBLE_EQ(s.lr(50), 5e-4);       // warmup
  EXPECT_DOUBLE_EQ(s.lr(100), 1e-3);      // top
  EXPECT_NEAR(s.lr(600), 5.5e-4, 1e-15);  // halfway: (lr + min_lr) / 2
  EXPECT_DOUBLE_EQ(s.lr(1100), 1e-4);     // max_steps: min_lr
  EXPECT_DOUBLE_EQ(s.lr(5000), 1e-4);     // and after
  EXPECT_GT(s.lr(300), s.lr(301));        // monotone decay
  const std::string e = test::error_of([] {
    parse_config("data: {corpus: c.h5}\noptim: {schedule: cosine, warmup_steps: 10}\ntrain: {max_epochs: 1}\n",
                 "cos.yaml");
  });
  EXPECT_NE(e.find("cos.yaml: optim.schedule cosine decays over train.max_steps"), std::string::npos) << e;
}

// adamw decays the weights apart from the gradient (w -= lr * wd * w); adam's weight_decay goes through the moments.
TEST(Optimizer, AdamwDecaysWeightsDecoupled) {
  auto step_once = [](OptimizerKind kind) {
    torch::Tensor w = torch::full({3}, 2.0, torch::requires_grad());
    OptimConfig o;
    o.optimizer = kind, o.lr = 0.1, o.weight_decay = 0.1;
    auto opt = make_optimizer(o, {w});
    w.mutable_grad() = torch::zeros({3});
    opt->step();
    return w[0].item<double>();
  };
  EXPECT_NEAR(step_once(OptimizerKind::kAdamw), 2.0 * (1 - 0.1 * 0.1), 1e-6);
  EXPECT_NEAR(step_once(OptimizerKind::kAdam), 2.0 - 0.1, 1e-4);  // L2 gradient, normalised by Adam: a full lr step
}

}  // namespace tern
